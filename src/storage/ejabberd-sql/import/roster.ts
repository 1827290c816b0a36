/**
 * The roster (`rosterusers`, `rostergroups`, `roster_version`): contacts and inbound requests
 * gathered by JID through the import, written at the end. `merge` keeps what a stored contact
 * has that the document does not say (its item, its pending request).
 */
import { createHash, randomBytes } from 'node:crypto';
import { textOf, type PendingSubscriptionRecord, type RosterItem, type RosterRecord } from '../../../records/model.js';
import { text } from '../../sql/columns.js';
import { storedBareJid } from '../../../lib/jid.js';
import type { ImportTarget } from './target.js';

const SUBSCRIPTION_CODES = { both: 'B', to: 'T', from: 'F', none: 'N' } as const;

interface RosterEntry {
  item?: RosterItem;
  pendingIn?: string;
}

export class RosterImport {
  /** By contact JID; undefined while the import has nothing to write. */
  private entries: Map<string, RosterEntry> | undefined;

  constructor(
    private readonly target: ImportTarget,
    private readonly merge: boolean,
  ) {}

  /** `replace`: the stored roster emptied; a new version is written even if no contact comes. */
  async clear(): Promise<void> {
    const { db, t, ref } = this.target;
    await t.delete(db, ref, 'rosterusers');
    await t.delete(db, ref, 'rostergroups');
    this.entries ??= new Map();
  }

  /** Items of a roster record; removals, the user's own JID and empty JIDs are left out. */
  addItems(record: RosterRecord): void {
    const roster = (this.entries ??= new Map());
    const { jid } = this.target;
    for (const item of record.items) {
      if (item.subscription === 'remove' || item.jid === jid || item.jid === '') continue;
      const entry = roster.get(item.jid) ?? {};
      roster.set(item.jid, { ...entry, item });
    }
  }

  /** An inbound subscription request, with its status text as ejabberd's `askmessage`. */
  addPending(record: PendingSubscriptionRecord): void {
    const roster = (this.entries ??= new Map());
    const from = storedBareJid(record.from);
    const status = record.payload.find((p) => p.name === 'status');
    roster.set(from, { ...(roster.get(from) ?? {}), pendingIn: status ? textOf(status) : '' });
  }

  async write(): Promise<void> {
    if (!this.entries) return;
    const { db, t, ref } = this.target;
    for (const [jid, entry] of this.entries) {
      let item = entry.item;
      let pendingIn = entry.pendingIn;
      if (this.merge) {
        const old = await t.select(db, ref, 'rosterusers', ['nick', 'subscription', 'ask', 'askmessage'], ` AND "jid" = ?`, [jid]);
        const row = old[0];
        if (row) {
          const ask = text(row.ask, 'rosterusers.ask').trim();
          if (pendingIn === undefined && (ask === 'I' || ask === 'B')) pendingIn = text(row.askmessage, 'rosterusers.askmessage');
          if (!item) {
            const groups = (await t.select(db, ref, 'rostergroups', ['grp'], ` AND "jid" = ?`, [jid])).map((g) => text(g.grp, 'rostergroups.grp'));
            const nick = text(row.nick, 'rosterusers.nick');
            const sub = text(row.subscription, 'rosterusers.subscription').trim();
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
}
