/**
 * PEP nodes and items (`pubsub_node`, `pubsub_node_option`, `pubsub_state`, `pubsub_item`),
 * keyed by the user's bare JID. A node the document names but storage lacks is created as
 * publishing to it would; options, affiliations and items the document has replace stored ones.
 */
import type { PepItemRecord, PepNodeRecord } from '../../../records/model.js';
import { serializeElement } from '../../../xml/xml.js';
import { formatTerm } from '../erlang.js';
import { DEFAULT_PEP_OPTIONS, encodeAffiliation, encodeSubscriptions, fieldToOption, isoToMicros, microsToErlangNow } from '../pep.js';
import { int } from '../../sql/columns.js';
import { storedBareJid } from '../../../lib/jid.js';
import type { ImportTarget } from './target.js';

type SubscriptionState = PepNodeRecord['subscriptions'][number]['subscription'];

export class PepImport {
  /** Node ids by node name, as looked up or created. */
  private readonly nodeIds = new Map<string, number>();

  constructor(private readonly target: ImportTarget) {}

  /** `replace`: every PEP node of the user removed, with all it holds. */
  async clear(): Promise<void> {
    const { db, jid } = this.target;
    const nodes = await db.query(`SELECT "nodeid" FROM "pubsub_node" WHERE "host" = ? AND "plugin" = 'pep'`, [jid]);
    // SQLite only cascades with PRAGMA foreign_keys on, which ejabberd does not set.
    for (const n of nodes) await this.deleteNode(int(n.nodeid, 'pubsub_node.nodeid'));
  }

  private async deleteNode(nodeid: number): Promise<void> {
    for (const table of ['pubsub_item', 'pubsub_node_option', 'pubsub_state', 'pubsub_node_owner', 'pubsub_node']) {
      await this.target.db.run(`DELETE FROM "${table}" WHERE "nodeid" = ?`, [nodeid]);
    }
  }

  /** The stored node's id; undefined when the user has no such node. */
  async nodeId(node: string): Promise<number | undefined> {
    const known = this.nodeIds.get(node);
    if (known !== undefined) return known;
    const rows = await this.target.db.query(`SELECT "nodeid" FROM "pubsub_node" WHERE "host" = ? AND "node" = ?`, [this.target.jid, node]);
    const id = rows[0] ? int(rows[0].nodeid, 'pubsub_node.nodeid') : undefined;
    if (id !== undefined) this.nodeIds.set(node, id);
    return id;
  }

  /** Creates the node as publishing to it would (default options, the user as owner). */
  private async createNode(node: string): Promise<number> {
    const { db, jid } = this.target;
    await db.run(`INSERT INTO "pubsub_node" ("host", "node", "parent", "plugin") VALUES (?, ?, '', 'pep')`, [jid, node]);
    const id = await this.nodeId(node);
    if (id === undefined) throw new Error(`pubsub node ${node} was not created`);
    for (const [name, value] of DEFAULT_PEP_OPTIONS) {
      await db.run(`INSERT INTO "pubsub_node_option" ("nodeid", "name", "val") VALUES (?, ?, ?)`, [id, name, formatTerm(value)]);
    }
    await db.run(`INSERT INTO "pubsub_state" ("nodeid", "jid", "affiliation", "subscriptions") VALUES (?, ?, 'o', '')`, [id, jid]);
    return id;
  }

  /** The node's options, affiliations and subscriptions; an option ejabberd has no place for is skipped. */
  async writeNode(record: PepNodeRecord): Promise<void> {
    const { db, jid, tally } = this.target;
    const id = (await this.nodeId(record.node)) ?? (await this.createNode(record.node));
    for (const field of record.config) {
      const option = fieldToOption(field);
      if (typeof option === 'string') {
        // A field without a value holds nothing that could be lost: no line in the report.
        if (field.var !== 'FORM_TYPE' && field.values.some((v) => v !== '')) tally.skip('pep', `node option ${field.var}: ${option}`, record.node);
        continue;
      }
      await db.run(`DELETE FROM "pubsub_node_option" WHERE "nodeid" = ? AND "name" = ?`, [id, option.name]);
      await db.run(`INSERT INTO "pubsub_node_option" ("nodeid", "name", "val") VALUES (?, ?, ?)`, [id, option.name, option.value]);
    }
    const states = new Map<string, { affiliation: string; subs: { subscription: SubscriptionState; subid?: string }[] }>();
    states.set(jid, { affiliation: 'o', subs: [] });
    for (const a of record.affiliations) {
      if (storedBareJid(a.jid) === jid) continue;
      states.set(a.jid, { affiliation: encodeAffiliation(a.affiliation), subs: [] });
    }
    for (const s of record.subscriptions) {
      const state = states.get(s.jid) ?? { affiliation: 'n', subs: [] };
      state.subs.push({ subscription: s.subscription, ...(s.subid !== undefined ? { subid: s.subid } : {}) });
      states.set(s.jid, state);
    }
    for (const [who, state] of states) {
      await db.run(`DELETE FROM "pubsub_state" WHERE "nodeid" = ? AND "jid" = ?`, [id, who]);
      await db.run(`INSERT INTO "pubsub_state" ("nodeid", "jid", "affiliation", "subscriptions") VALUES (?, ?, ?, ?)`, [
        id,
        who,
        state.affiliation,
        encodeSubscriptions(state.subs),
      ]);
    }
  }

  /** The item, replacing a stored one of its id; without a publish time it gets the current one. */
  async writeItem(record: PepItemRecord): Promise<void> {
    const { db, jid } = this.target;
    const id = (await this.nodeId(record.node)) ?? (await this.createNode(record.node));
    const micros = (record.published !== undefined ? isoToMicros(record.published) : undefined) ?? Date.now() * 1000;
    const when = microsToErlangNow(micros);
    await db.run(`DELETE FROM "pubsub_item" WHERE "nodeid" = ? AND "itemid" = ?`, [id, record.id]);
    await db.run(`INSERT INTO "pubsub_item" ("nodeid", "itemid", "publisher", "creation", "modification", "payload") VALUES (?, ?, ?, ?, ?, ?)`, [
      id,
      record.id,
      record.publisher ?? jid,
      when,
      when,
      record.payload ? serializeElement(record.payload) : '',
    ]);
  }
}
