/**
 * One import into ejabberd's SQL tables (23.01 and 24.12), inside a transaction the caller owns. Small
 * per-user data (roster, vCard, privacy, blocklist) is collected and written at the end so that
 * several records combine; the rest is written as it arrives.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { ApplyOptions, ApplyReport, SkippedItem, UserRef } from '../backend.js';
import { StorageError } from '../backend.js';
import {
  childElements,
  dataKindOf,
  element,
  firstChild,
  textOf,
  type DataKind,
  type PepItemRecord,
  type PepNodeRecord,
  type PrivacyList,
  type RosterItem,
  type UserRecord,
  type UserStart,
  type XmlElement,
} from '../../records/model.js';
import { PepProfile } from '../../records/vcard-legacy.js';
import { parseElement, serializeElement } from '../../xml/xml.js';
import type { SqlSession } from '../sql/dialect.js';
import { EjabberdArchiveWriter, MICROS_ID } from './archive-writer.js';
import { LEGACY_NS, PEP_BOOKMARKS_CONFIG, PEP_BOOKMARKS_NODE, legacyFromPep, pepFromLegacy } from './bookmarks.js';
import { formatTerm } from './erlang.js';
import { DEFAULT_PEP_OPTIONS, encodeAffiliation, encodeSubscriptions, fieldToOption, isoToMicros, microsToErlangNow } from './pep.js';
import { BLOCKLIST_NAME } from './read.js';
import { bool, num, str, type Tables } from './tables.js';

const SUBSCRIPTION_CODES = { both: 'B', to: 'T', from: 'F', none: 'N' } as const;

interface RosterEntry {
  item?: RosterItem;
  pendingIn?: string;
}

function bare(jid: string): string {
  const slash = jid.indexOf('/');
  return slash < 0 ? jid : jid.slice(0, slash);
}

/** What the target database's generation asks of an import. */
export interface EjabberdImportSchema {
  /** `archive.origin_id` exists (24.12) and must be written. */
  readonly originId: boolean;
  /** Keep XEP-0048 private and XEP-0402 PEP bookmarks in sync, as ejabberd 24.12 does. */
  readonly syncBookmarks: boolean;
}

/** `<origin-id xmlns='urn:xmpp:sid:0' id/>`'s id, else the message id, else '' (what ejabberd 24.12 stores). */
export function originIdOf(stanza: XmlElement): string {
  const origin = firstChild(stanza, 'origin-id', 'urn:xmpp:sid:0');
  const id = origin?.attrs.id;
  if (id !== undefined && id !== '') return id;
  return stanza.attrs.id ?? '';
}

export class EjabberdUserImport {
  private readonly jid: string;
  private readonly counts: Partial<Record<DataKind, number>> = {};
  private readonly skipped: SkippedItem[] = [];
  private readonly warnings: string[] = [];
  private readonly unsupported = new Set<DataKind>();
  private readonly notIncluded = new Map<DataKind, number>();

  private roster: Map<string, RosterEntry> | undefined;
  private vcard: XmlElement | undefined;
  /** The PEP profile (vCard4, nick, avatar), for a vcard-temp when the document has none. */
  private readonly profile = new PepProfile();
  private blocked: Set<string> | undefined;
  private privacy: { defaultList?: string; lists: Map<string, PrivacyList> } | undefined;
  private readonly nodeIds = new Map<string, number>();
  private readonly archive: EjabberdArchiveWriter;
  private offlineSeen: Set<string> | undefined;
  private offlineDuplicates = 0;
  /** The document's XEP-0048 `<storage/>` and whether it had XEP-0402 items, for the bookmark sync. */
  private legacyBookmarks: XmlElement | undefined;
  private pepBookmarks = 0;

  constructor(
    private readonly db: SqlSession,
    private readonly t: Tables,
    private readonly ref: UserRef,
    private readonly options: ApplyOptions,
    private readonly passwordHash: 'SHA-1' | 'SHA-256' | 'plain',
    private readonly schema: EjabberdImportSchema = { originId: false, syncBookmarks: false },
  ) {
    this.jid = `${ref.user}@${ref.host}`;
    this.archive = new EjabberdArchiveWriter(db, t, ref, options.mode === 'merge', schema.originId);
  }

  private includes(kind: DataKind): boolean {
    return this.options.include.has(kind);
  }

  private count(kind: DataKind, n = 1): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + n;
  }

  private skip(kind: DataKind, reason: string, detail?: string): void {
    this.skipped.push({ kind, reason, ...(detail !== undefined ? { detail } : {}) });
  }

  async run(account: UserStart, records: AsyncIterable<UserRecord>): Promise<ApplyReport> {
    const exists = (await this.t.select(this.db, this.ref, 'users', ['username'])).length > 0;
    if (!exists && !this.options.createAccount) throw new StorageError('user-not-found', `${this.jid} does not exist`);
    if (!exists || this.includes('credentials')) await this.applyAccount(account, exists);
    if (this.options.mode === 'replace') await this.clear();
    for await (const record of records) {
      this.options.signal?.throwIfAborted();
      await this.add(record);
    }
    this.options.signal?.throwIfAborted();
    await this.finish();
    return this.report(!exists);
  }

  private async applyAccount(account: UserStart, exists: boolean): Promise<void> {
    const wanted = this.passwordHash === 'plain' ? undefined : this.passwordHash === 'SHA-256' ? 'SCRAM-SHA-256' : 'SCRAM-SHA-1';
    const scram = account.scram.find((s) => s.mechanism === wanted);
    let values: { password: string; serverkey: string; salt: string; iterationcount: number } | undefined;
    if (this.includes('credentials') && scram) {
      // ejabberd_auth_sql's encoding: a bare StoredKey is SHA-1, others carry their hash as a prefix.
      const storedKey = scram.mechanism === 'SCRAM-SHA-256' ? `sha256:${scram.storedKey}` : scram.storedKey;
      values = { password: storedKey, serverkey: scram.serverKey, salt: scram.salt, iterationcount: scram.iterationCount };
    } else if (this.includes('credentials') && account.password !== undefined) {
      // ejabberd authenticates a plain row even with auth_password_format: scram.
      values = { password: account.password, serverkey: '', salt: '', iterationcount: 0 };
    }
    if (values) {
      if (exists) await this.t.delete(this.db, this.ref, 'users');
      await this.t.insert(this.db, this.ref, 'users', values);
      this.count('credentials');
      return;
    }
    const other = account.scram.map((s) => s.mechanism).join(', ');
    if (this.includes('credentials')) {
      this.skip('credentials', `this host takes ${wanted ?? 'a plain password'} (or a plain password), the document has none`, other || undefined);
      this.warnings.push(exists ? `the existing credentials were kept for ${this.jid}` : `password must be reset for ${this.jid}`);
    }
    if (!exists) {
      // The account needs some password; one nobody knows keeps it closed until it is reset.
      await this.t.insert(this.db, this.ref, 'users', { password: randomBytes(24).toString('base64'), serverkey: '', salt: '', iterationcount: 0 });
      if (!this.includes('credentials')) this.warnings.push(`password must be reset for ${this.jid}`);
    }
  }

  /** `replace`: the selected kinds emptied before anything is written. */
  private async clear(): Promise<void> {
    const { db, t, ref } = this;
    if (this.includes('roster')) {
      await t.delete(db, ref, 'rosterusers');
      await t.delete(db, ref, 'rostergroups');
      this.roster ??= new Map();
    }
    if (this.includes('vcard')) {
      await t.delete(db, ref, 'vcard');
      await this.deleteVCardSearch();
    }
    if (this.includes('private')) await t.delete(db, ref, 'private_storage');
    if (this.includes('archive')) await t.delete(db, ref, 'archive');
    if (this.includes('offline')) await t.delete(db, ref, 'spool');
    if (this.includes('pep')) {
      const nodes = await db.query(`SELECT "nodeid" FROM "pubsub_node" WHERE "host" = ? AND "plugin" = 'pep'`, [this.jid]);
      // SQLite only cascades with PRAGMA foreign_keys on, which ejabberd does not set.
      for (const n of nodes) await this.deleteNode(num(n.nodeid));
    }
    if (this.includes('privacy')) {
      const lists = await t.select(db, ref, 'privacy_list', ['name', 'id']);
      for (const l of lists) {
        if (str(l.name) === BLOCKLIST_NAME) continue;
        await db.run(`DELETE FROM "privacy_list_data" WHERE "id" = ?`, [num(l.id)]);
        await db.run(`DELETE FROM "privacy_list" WHERE "id" = ?`, [num(l.id)]);
      }
      await t.delete(db, ref, 'privacy_default_list', ` AND "name" <> ?`, [BLOCKLIST_NAME]);
      this.privacy ??= { lists: new Map() };
    }
    if (this.includes('blocklist')) await this.clearBlocks();
  }

  /** Before any list is written, so that blocks a privacy record brings along survive. */
  private async clearBlocks(): Promise<void> {
    const defaults = await this.t.select(this.db, this.ref, 'privacy_default_list', ['name']);
    const id = await this.listId(defaults[0] ? str(defaults[0].name) : BLOCKLIST_NAME, false);
    if (id === undefined) return;
    const rows = await this.db.query(`SELECT "value", "match_all" FROM "privacy_list_data" WHERE "id" = ? AND "t" = 'j' AND "action" = 'd'`, [id]);
    for (const r of rows) {
      if (bool(r.match_all)) await this.db.run(`DELETE FROM "privacy_list_data" WHERE "id" = ? AND "t" = 'j' AND "action" = 'd' AND "value" = ?`, [id, str(r.value)]);
    }
  }

  private async deleteNode(nodeid: number): Promise<void> {
    for (const table of ['pubsub_item', 'pubsub_node_option', 'pubsub_state', 'pubsub_node_owner', 'pubsub_node']) {
      await this.db.run(`DELETE FROM "${table}" WHERE "nodeid" = ?`, [nodeid]);
    }
  }

  private async deleteVCardSearch(): Promise<void> {
    const lu = this.ref.user.toLowerCase();
    if (this.t.newSchema) await this.db.run(`DELETE FROM "vcard_search" WHERE "lusername" = ? AND "server_host" = ?`, [lu, this.ref.host]);
    else await this.db.run(`DELETE FROM "vcard_search" WHERE "lusername" = ?`, [lu]);
  }

  private async add(record: UserRecord): Promise<void> {
    const kind = dataKindOf(record);
    if (!this.includes(kind)) {
      this.notIncluded.set(kind, (this.notIncluded.get(kind) ?? 0) + 1);
      return;
    }
    switch (record.kind) {
      case 'roster':
        this.roster ??= new Map();
        for (const item of record.items) {
          if (item.subscription === 'remove' || item.jid === this.jid || item.jid === '') continue;
          const entry = this.roster.get(item.jid) ?? {};
          this.roster.set(item.jid, { ...entry, item });
        }
        this.count('roster');
        return;
      case 'pending-subscription': {
        this.roster ??= new Map();
        const from = bare(record.from);
        const status = record.payload.find((p) => p.name === 'status');
        this.roster.set(from, { ...(this.roster.get(from) ?? {}), pendingIn: status ? textOf(status) : '' });
        this.count('roster');
        return;
      }
      case 'vcard':
        this.vcard = record.vcard;
        this.count('vcard');
        return;
      case 'private': {
        const ns = record.element.xmlns;
        if (ns === LEGACY_NS && record.element.name === 'storage') this.legacyBookmarks = record.element;
        await this.t.delete(this.db, this.ref, 'private_storage', ` AND "namespace" = ?`, [ns]);
        await this.t.insert(this.db, this.ref, 'private_storage', { namespace: ns, data: serializeElement(record.element) });
        this.count('private');
        return;
      }
      case 'pep-node':
        await this.writeNode(record);
        this.count('pep');
        return;
      case 'pep-item':
        if (record.node === PEP_BOOKMARKS_NODE) this.pepBookmarks++;
        this.profile.add(record);
        await this.writeItem(record);
        this.count('pep');
        return;
      case 'archive':
        await this.writeArchive(record.id, record.timestamp, record.with, record.stanza);
        return;
      case 'offline':
        await this.writeOffline(record.stanza, record.timestamp);
        return;
      case 'blocklist':
        this.blocked ??= new Set();
        for (const jid of record.items) this.blocked.add(jid);
        this.count('blocklist');
        return;
      case 'privacy':
        this.privacy ??= { lists: new Map() };
        if (record.defaultList !== undefined) this.privacy.defaultList = record.defaultList;
        for (const l of record.lists) this.privacy.lists.set(l.name, l);
        this.count('privacy');
        return;
      case 'opaque':
        this.unsupported.add('other');
        this.skip('other', 'ejabberd has no table for this element', `{${record.element.xmlns}}${record.element.name}`);
        return;
    }
  }

  // ------------------------------------------------------------------------------------------
  // PEP

  private async nodeId(node: string): Promise<number | undefined> {
    const known = this.nodeIds.get(node);
    if (known !== undefined) return known;
    const rows = await this.db.query(`SELECT "nodeid" FROM "pubsub_node" WHERE "host" = ? AND "node" = ?`, [this.jid, node]);
    const id = rows[0] ? num(rows[0].nodeid) : undefined;
    if (id !== undefined) this.nodeIds.set(node, id);
    return id;
  }

  /** Creates the node as publishing to it would (default options, the user as owner). */
  private async createNode(node: string): Promise<number> {
    await this.db.run(`INSERT INTO "pubsub_node" ("host", "node", "parent", "plugin") VALUES (?, ?, '', 'pep')`, [this.jid, node]);
    const id = await this.nodeId(node);
    if (id === undefined) throw new Error(`pubsub node ${node} was not created`);
    for (const [name, value] of DEFAULT_PEP_OPTIONS) {
      await this.db.run(`INSERT INTO "pubsub_node_option" ("nodeid", "name", "val") VALUES (?, ?, ?)`, [id, name, formatTerm(value)]);
    }
    await this.db.run(`INSERT INTO "pubsub_state" ("nodeid", "jid", "affiliation", "subscriptions") VALUES (?, ?, 'o', '')`, [id, this.jid]);
    return id;
  }

  private async writeNode(record: PepNodeRecord): Promise<void> {
    const id = (await this.nodeId(record.node)) ?? (await this.createNode(record.node));
    for (const field of record.config) {
      const option = fieldToOption(field);
      if (typeof option === 'string') {
        // A field without a value holds nothing that could be lost: no line in the report.
        if (field.var !== 'FORM_TYPE' && field.values.some((v) => v !== '')) this.skip('pep', `node option ${field.var}: ${option}`, record.node);
        continue;
      }
      await this.db.run(`DELETE FROM "pubsub_node_option" WHERE "nodeid" = ? AND "name" = ?`, [id, option.name]);
      await this.db.run(`INSERT INTO "pubsub_node_option" ("nodeid", "name", "val") VALUES (?, ?, ?)`, [id, option.name, option.value]);
    }
    const states = new Map<string, { affiliation: string; subs: { subscription: PepNodeRecord['subscriptions'][number]['subscription']; subid?: string }[] }>();
    states.set(this.jid, { affiliation: 'o', subs: [] });
    for (const a of record.affiliations) {
      if (bare(a.jid) === this.jid) continue;
      states.set(a.jid, { affiliation: encodeAffiliation(a.affiliation), subs: [] });
    }
    for (const s of record.subscriptions) {
      const state = states.get(s.jid) ?? { affiliation: 'n', subs: [] };
      state.subs.push({ subscription: s.subscription, ...(s.subid !== undefined ? { subid: s.subid } : {}) });
      states.set(s.jid, state);
    }
    for (const [who, state] of states) {
      await this.db.run(`DELETE FROM "pubsub_state" WHERE "nodeid" = ? AND "jid" = ?`, [id, who]);
      await this.db.run(`INSERT INTO "pubsub_state" ("nodeid", "jid", "affiliation", "subscriptions") VALUES (?, ?, ?, ?)`, [
        id,
        who,
        state.affiliation,
        encodeSubscriptions(state.subs),
      ]);
    }
  }

  private async writeItem(record: PepItemRecord): Promise<void> {
    const id = (await this.nodeId(record.node)) ?? (await this.createNode(record.node));
    const micros = (record.published !== undefined ? isoToMicros(record.published) : undefined) ?? Date.now() * 1000;
    const when = microsToErlangNow(micros);
    await this.db.run(`DELETE FROM "pubsub_item" WHERE "nodeid" = ? AND "itemid" = ?`, [id, record.id]);
    await this.db.run(`INSERT INTO "pubsub_item" ("nodeid", "itemid", "publisher", "creation", "modification", "payload") VALUES (?, ?, ?, ?, ?, ?)`, [
      id,
      record.id,
      record.publisher ?? this.jid,
      when,
      when,
      record.payload ? serializeElement(record.payload) : '',
    ]);
  }

  // ------------------------------------------------------------------------------------------
  // Messages

  /**
   * ejabberd's MAM id is the archive time in µs. An id that already is one is kept; any other id
   * (Prosody's UUIDs) cannot be, and the message gets a fresh time-based one.
   */
  private async writeArchive(id: string, timestamp: string, withJid: string | undefined, stanza: XmlElement): Promise<void> {
    const micros = MICROS_ID.test(id) ? Number(id) : isoToMicros(timestamp);
    if (micros === undefined) {
      this.skip('archive', 'no usable archive time', id);
      return;
    }
    const from = stanza.attrs.from ?? '';
    const to = stanza.attrs.to ?? '';
    const outgoing = from === '' || bare(from) === this.jid;
    const peer = outgoing ? to : from;
    const barePeer = withJid ?? bare(peer);
    const body = firstChild(stanza, 'body');
    await this.archive.add({
      id,
      micros,
      xml: serializeElement(stanza),
      peer: peer === '' ? barePeer : peer,
      barePeer,
      txt: body ? textOf(body) : '',
      kind: stanza.attrs.type === 'groupchat' ? 'groupchat' : 'chat',
      originId: originIdOf(stanza),
    });
  }

  /** mod_offline serves the stored stanza as it is: the delay that says when it was stored must be in it. */
  private async writeOffline(stanza: XmlElement, timestamp: string | undefined): Promise<void> {
    let out = stanza;
    if (!childElements(stanza, 'delay', 'urn:xmpp:delay').length) {
      const stamp = timestamp ?? new Date().toISOString();
      out = { ...stanza, children: [...stanza.children, element('delay', 'urn:xmpp:delay', { from: this.ref.host, stamp }, ['Offline Storage'])] };
    }
    const xml = serializeElement(out);
    if (this.options.mode === 'merge') {
      // Offline messages have no id: one already stored with the same XML is the same message.
      this.offlineSeen ??= new Set((await this.t.select(this.db, this.ref, 'spool', ['xml'])).map((r) => str(r.xml)));
      if (this.offlineSeen.has(xml)) {
        this.offlineDuplicates++;
        return;
      }
      this.offlineSeen.add(xml);
    }
    await this.t.insert(this.db, this.ref, 'spool', { xml });
    this.count('offline');
  }

  // ------------------------------------------------------------------------------------------
  // Collected kinds

  private async finish(): Promise<void> {
    await this.archive.flush();
    if (this.archive.written > 0) this.count('archive', this.archive.written);
    if (this.schema.syncBookmarks && this.includes('private') && this.includes('pep')) await this.syncBookmarks();
    await this.writeRoster();
    if (this.vcard) await this.writeVCard(this.vcard);
    else await this.vcardFromProfile();
    if (this.privacy) await this.writePrivacy(this.privacy);
    if (this.blocked) await this.writeBlocklist(this.blocked);
  }

  /**
   * ejabberd 24.12 mirrors each bookmark form into the other when a client writes one. A document
   * with only one form gets the other written here, so legacy and current clients both see the
   * rooms: XEP-0402 items become the private `<storage/>` (from every item the node holds after
   * the import), a private `<storage/>` becomes XEP-0402 items (the node made as XEP-0402 asks).
   */
  private async syncBookmarks(): Promise<void> {
    if (this.pepBookmarks > 0 && !this.legacyBookmarks) {
      const id = await this.nodeId(PEP_BOOKMARKS_NODE);
      if (id === undefined) return;
      const rows = await this.db.query(`SELECT "itemid", "payload" FROM "pubsub_item" WHERE "nodeid" = ? ORDER BY "modification", "itemid"`, [id]);
      const items = rows.flatMap((r) => {
        const text = str(r.payload).trim();
        return text === '' ? [] : [{ id: str(r.itemid), payload: parseElement(text) }];
      });
      const storage = legacyFromPep(items);
      await this.t.delete(this.db, this.ref, 'private_storage', ` AND "namespace" = ?`, [LEGACY_NS]);
      await this.t.insert(this.db, this.ref, 'private_storage', { namespace: LEGACY_NS, data: serializeElement(storage) });
      this.warnings.push(`bookmarks: ${storage.children.length} XEP-0402 bookmark(s) also written as XEP-0048 private storage, which ejabberd keeps in sync`);
    } else if (this.legacyBookmarks && this.pepBookmarks === 0) {
      const items = pepFromLegacy(this.legacyBookmarks);
      if (items.length === 0) return;
      if ((await this.nodeId(PEP_BOOKMARKS_NODE)) === undefined) {
        await this.writeNode({ kind: 'pep-node', node: PEP_BOOKMARKS_NODE, config: PEP_BOOKMARKS_CONFIG, affiliations: [], subscriptions: [] });
      }
      for (const item of items) await this.writeItem({ kind: 'pep-item', node: PEP_BOOKMARKS_NODE, id: item.id, payload: item.payload, publisher: this.jid });
      this.warnings.push(`bookmarks: ${items.length} XEP-0048 private bookmark(s) also written as XEP-0402 PEP items, which ejabberd keeps in sync`);
    }
  }

  /**
   * ejabberd serves vcard-temp from its vcard table only: an account whose profile lives in PEP
   * alone (Prosody's default with mod_vcard_legacy) gets the vcard-temp Prosody would have
   * answered, unless a vCard is stored already (merge).
   */
  private async vcardFromProfile(): Promise<void> {
    if (!this.includes('vcard') || !this.profile.present) return;
    if (this.options.mode === 'merge' && (await this.t.select(this.db, this.ref, 'vcard', ['username'])).length > 0) return;
    await this.writeVCard(this.profile.toVCardTemp());
    this.count('vcard');
    this.warnings.push('vcard-temp made from the PEP vCard4, nickname and avatar (as Prosody mod_vcard_legacy maps them): ejabberd serves no vCard from PEP');
  }

  private async writeRoster(): Promise<void> {
    if (!this.roster) return;
    const { db, t, ref } = this;
    for (const [jid, entry] of this.roster) {
      let item = entry.item;
      let pendingIn = entry.pendingIn;
      if (this.options.mode === 'merge') {
        const old = await t.select(db, ref, 'rosterusers', ['nick', 'subscription', 'ask', 'askmessage'], ` AND "jid" = ?`, [jid]);
        const row = old[0];
        if (row) {
          const ask = str(row.ask).trim();
          if (pendingIn === undefined && (ask === 'I' || ask === 'B')) pendingIn = str(row.askmessage);
          if (!item) {
            const groups = (await t.select(db, ref, 'rostergroups', ['grp'], ` AND "jid" = ?`, [jid])).map((g) => str(g.grp));
            const nick = str(row.nick);
            const sub = str(row.subscription).trim();
            item = {
              jid,
              ...(nick !== '' ? { name: nick } : {}),
              subscription: sub === 'B' ? 'both' : sub === 'T' ? 'to' : sub === 'F' ? 'from' : 'none',
              ...(ask === 'O' || ask === 'B' ? { ask: 'subscribe' as const } : {}),
              groups,
            };
          }
        }
        await t.delete(db, ref, 'rosterusers', ` AND "jid" = ?`, [jid]);
        await t.delete(db, ref, 'rostergroups', ` AND "jid" = ?`, [jid]);
      }
      const out = item?.ask === 'subscribe';
      const inbound = pendingIn !== undefined;
      const sub = item ? item.subscription : 'none';
      await t.insert(db, ref, 'rosterusers', {
        jid,
        nick: item?.name ?? '',
        subscription: SUBSCRIPTION_CODES[sub === 'remove' ? 'none' : sub],
        ask: out && inbound ? 'B' : out ? 'O' : inbound ? 'I' : 'N',
        askmessage: pendingIn ?? '',
        server: 'N',
        subscribe: '',
        type: 'item',
      });
      for (const grp of new Set(item?.groups ?? [])) await t.insert(db, ref, 'rostergroups', { jid, grp });
    }
    // A new version makes clients with a cached roster fetch the whole one again.
    const version = createHash('sha1').update(randomBytes(16)).digest('hex');
    await t.delete(db, ref, 'roster_version');
    await t.insert(db, ref, 'roster_version', { version });
  }

  private async writeVCard(vcard: XmlElement): Promise<void> {
    await this.t.delete(this.db, this.ref, 'vcard');
    await this.t.insert(this.db, this.ref, 'vcard', { vcard: serializeElement(vcard) });
    await this.deleteVCardSearch();
    // mod_vcard_sql keeps the search index in step on every set, search enabled or not.
    const text = (path: readonly string[]): string => {
      let el: XmlElement | undefined = vcard;
      for (const name of path) el = el ? childElements(el, name)[0] : undefined;
      return el ? textOf(el) : '';
    };
    const fields: Record<string, string> = {
      fn: text(['FN']),
      family: text(['N', 'FAMILY']),
      given: text(['N', 'GIVEN']),
      middle: text(['N', 'MIDDLE']),
      nickname: text(['NICKNAME']),
      bday: text(['BDAY']),
      ctry: text(['ADR', 'CTRY']),
      locality: text(['ADR', 'LOCALITY']),
      email: text(['EMAIL', 'USERID']) || text(['EMAIL']),
      orgname: text(['ORG', 'ORGNAME']),
      orgunit: text(['ORG', 'ORGUNIT']),
    };
    const row: Record<string, string> = { username: this.ref.user, lusername: this.ref.user.toLowerCase() };
    if (this.t.newSchema) row.server_host = this.ref.host;
    for (const [k, v] of Object.entries(fields)) {
      row[k] = v;
      row[`l${k}`] = v.toLowerCase();
    }
    const cols = Object.keys(row);
    await this.db.run(
      `INSERT INTO "vcard_search" (${cols.map((c) => `"${c}"`).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
      Object.values(row),
    );
  }

  private async listId(name: string, create: boolean): Promise<number | undefined> {
    const find = async (): Promise<number | undefined> => {
      const rows = await this.t.select(this.db, this.ref, 'privacy_list', ['id'], ` AND "name" = ?`, [name]);
      return rows[0] ? num(rows[0].id) : undefined;
    };
    const id = await find();
    if (id !== undefined || !create) return id;
    await this.t.insert(this.db, this.ref, 'privacy_list', { name });
    return find();
  }

  private async writePrivacy(privacy: { defaultList?: string; lists: Map<string, PrivacyList> }): Promise<void> {
    for (const list of privacy.lists.values()) {
      const id = await this.listId(list.name, true);
      if (id === undefined) throw new Error(`privacy list ${list.name} was not created`);
      await this.db.run(`DELETE FROM "privacy_list_data" WHERE "id" = ?`, [id]);
      for (const item of list.items) {
        const all = item.stanzas.length === 0;
        const has = (s: PrivacyList['items'][number]['stanzas'][number]): number => (!all && item.stanzas.includes(s) ? 1 : 0);
        await this.db.run(
          `INSERT INTO "privacy_list_data" ("id", "t", "value", "action", "ord", "match_all", "match_iq", "match_message", "match_presence_in", "match_presence_out") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            id,
            item.type === 'jid' ? 'j' : item.type === 'group' ? 'g' : item.type === 'subscription' ? 's' : 'n',
            item.value ?? '',
            item.action === 'allow' ? 'a' : 'd',
            item.order,
            all ? 1 : 0,
            has('iq'),
            has('message'),
            has('presence-in'),
            has('presence-out'),
          ],
        );
      }
    }
    if (privacy.defaultList !== undefined && privacy.lists.has(privacy.defaultList)) {
      await this.t.delete(this.db, this.ref, 'privacy_default_list');
      await this.t.insert(this.db, this.ref, 'privacy_default_list', { name: privacy.defaultList });
    }
  }

  /** As mod_blocking does: blocking items go into the default list, made when there is none. */
  private async writeBlocklist(blocked: Set<string>): Promise<void> {
    const { db, t, ref } = this;
    const defaults = await t.select(db, ref, 'privacy_default_list', ['name']);
    const name = defaults[0] ? str(defaults[0].name) : BLOCKLIST_NAME;
    const id = await this.listId(name, blocked.size > 0);
    if (id === undefined) return;
    const existing = await db.query(`SELECT "t", "value", "action", "match_all" FROM "privacy_list_data" WHERE "id" = ?`, [id]);
    const present = new Set(existing.filter((r) => str(r.t).trim() === 'j' && str(r.action).trim() === 'd' && bool(r.match_all)).map((r) => str(r.value)));
    for (const value of blocked) {
      if (present.has(value)) continue;
      await db.run(
        `INSERT INTO "privacy_list_data" ("id", "t", "value", "action", "ord", "match_all", "match_iq", "match_message", "match_presence_in", "match_presence_out") VALUES (?, 'j', ?, 'd', ?, ?, ?, ?, ?, ?)`,
        // Parameters, not literals: PostgreSQL casts an untyped parameter to boolean but not an integer literal.
        [id, value, 0, 1, 0, 0, 0, 0],
      );
    }
    if (defaults.length === 0 && blocked.size > 0) await t.insert(db, ref, 'privacy_default_list', { name });
  }

  private report(created: boolean): ApplyReport {
    const skipped = [...this.skipped];
    if (this.archive.duplicates > 0) skipped.push({ kind: 'archive', reason: 'already stored', detail: `${this.archive.duplicates} record(s)` });
    if (this.offlineDuplicates > 0) skipped.push({ kind: 'offline', reason: 'already stored', detail: `${this.offlineDuplicates} record(s)` });
    for (const [kind, n] of this.notIncluded) skipped.push({ kind, reason: 'kind not included', detail: `${n} record(s)` });
    return {
      user: this.jid,
      mode: this.options.mode,
      dryRun: this.options.dryRun,
      created,
      counts: this.counts,
      skipped,
      unsupported: [...this.unsupported],
      warnings: this.warnings,
    };
  }
}
