/**
 * ejabberd 23.01's SQL rows → XEP-0227 records. Values are read as ejabberd's own modules
 * (mod_roster_sql, mod_privacy_sql, node_pep_sql…) write them; see
 * /work/shared/reference/ejabberd-23.01.md for observed rows.
 */
import type { UserRef } from '../backend.js';
import {
  element,
  type ArchiveRecord,
  type BlocklistRecord,
  type NodeConfigField,
  type OfflineRecord,
  type PendingSubscriptionRecord,
  type PepItemRecord,
  type PepNodeRecord,
  type PrivacyItem,
  type PrivacyList,
  type PrivacyRecord,
  type RosterItem,
  type RosterRecord,
  type Subscription,
  type UserStart,
  type XmlElement,
} from '../../records/model.js';
import { NS } from '../../records/namespaces.js';
import { parseElement, storedElement } from '../../xml/xml.js';
import { queryArrays, type SqlSession } from '../sql/dialect.js';
import { decodeAffiliation, decodeSubscriptions, erlangNowToIso, microsToIso, optionToField } from './pep.js';
import { bool, int, optionalText, text } from '../sql/columns.js';
import { timestampToIso, type Tables } from './tables.js';

/** The list mod_blocking creates (and makes the default) when a user without one blocks someone. */
export const BLOCKLIST_NAME = 'Blocked contacts';

/** ejabberd's marker for messages it still has to archive; meaningless anywhere else. */
const MAM_TMP = 'urn:xmpp:mam:tmp';

export async function readAccount(db: SqlSession, t: Tables, ref: UserRef): Promise<UserStart | null> {
  const rows = await t.select(db, ref, 'users', ['password', 'serverkey', 'salt', 'iterationcount']);
  const row = rows[0];
  if (!row) return null;
  const password = text(row.password, 'users.password');
  const serverKey = text(row.serverkey, 'users.serverkey');
  if (serverKey === '') return { kind: 'user', name: ref.user, password, scram: [], extraAttributes: {} };
  // No hash-type column: ejabberd_auth_sql prefixes the StoredKey with `sha256:`/`sha512:` for
  // those hashes (auth_scram_hash) and leaves SHA-1 bare.
  const prefixed = /^(sha256|sha512):(.*)$/.exec(password);
  const hash = prefixed?.[1];
  const storedKey = prefixed?.[2] ?? password;
  // XEP-0227 as xporta models it has no SCRAM-SHA-512: such an account leaves without credentials.
  if (hash === 'sha512') return { kind: 'user', name: ref.user, scram: [], extraAttributes: {} };
  return {
    kind: 'user',
    name: ref.user,
    scram: [{ mechanism: hash === 'sha256' ? 'SCRAM-SHA-256' : 'SCRAM-SHA-1', iterationCount: int(row.iterationcount, 'users.iterationcount'), salt: text(row.salt, 'users.salt'), storedKey, serverKey }],
    extraAttributes: {},
  };
}

const SUBSCRIPTIONS: Readonly<Record<string, Subscription>> = { B: 'both', T: 'to', F: 'from', N: 'none' };

export async function readRoster(db: SqlSession, t: Tables, ref: UserRef): Promise<{ roster?: RosterRecord; pending: PendingSubscriptionRecord[] }> {
  const rows = await t.select(db, ref, 'rosterusers', ['jid', 'nick', 'subscription', 'ask', 'askmessage'], ' ORDER BY "jid"');
  const groupRows = await t.select(db, ref, 'rostergroups', ['jid', 'grp'], ' ORDER BY "jid", "grp"');
  const versionRows = await t.select(db, ref, 'roster_version', ['version']);
  const groups = new Map<string, string[]>();
  for (const g of groupRows) {
    const jid = text(g.jid, 'rostergroups.jid');
    groups.set(jid, [...(groups.get(jid) ?? []), text(g.grp, 'rostergroups.grp')]);
  }
  const items: RosterItem[] = [];
  const pending: PendingSubscriptionRecord[] = [];
  for (const row of rows) {
    const jid = text(row.jid, 'rosterusers.jid');
    const subscription = SUBSCRIPTIONS[text(row.subscription, 'rosterusers.subscription').trim()] ?? 'none';
    const ask = text(row.ask, 'rosterusers.ask').trim();
    const out = ask === 'O' || ask === 'B' || ask === 'S';
    const inbound = ask === 'I' || ask === 'B';
    const nick = text(row.nick, 'rosterusers.nick');
    const itemGroups = groups.get(jid) ?? [];
    if (inbound) {
      const message = text(row.askmessage, 'rosterusers.askmessage');
      pending.push({ kind: 'pending-subscription', from: jid, payload: message === '' ? [] : [element('status', NS.client, {}, [message])] });
    }
    // A row that only carries an unanswered request is not in the user's roster (clients never see it).
    if (inbound && !out && subscription === 'none' && nick === '' && itemGroups.length === 0) continue;
    items.push({ jid, ...(nick !== '' ? { name: nick } : {}), subscription, ...(out ? { ask: 'subscribe' as const } : {}), groups: itemGroups });
  }
  const version = versionRows[0] ? text(versionRows[0].version, 'roster_version.version') : undefined;
  if (items.length === 0 && version === undefined) return { pending };
  return { roster: { kind: 'roster', ...(version !== undefined ? { version } : {}), items }, pending };
}

export async function readVCard(db: SqlSession, t: Tables, ref: UserRef): Promise<XmlElement | undefined> {
  const rows = await t.select(db, ref, 'vcard', ['vcard']);
  const vcard = rows[0] ? text(rows[0].vcard, 'vcard.vcard') : '';
  return vcard === '' ? undefined : parseElement(vcard);
}

export async function readPrivate(db: SqlSession, t: Tables, ref: UserRef): Promise<XmlElement[]> {
  const rows = await t.select(db, ref, 'private_storage', ['namespace', 'data'], ' ORDER BY "namespace"');
  return rows.map((r) => text(r.data, 'private_storage.data')).filter((d) => d !== '').map((d) => parseElement(d));
}

interface StoredList {
  readonly name: string;
  readonly items: (PrivacyItem & { readonly blocking: boolean })[];
}

const PRIVACY_TYPES = { j: 'jid', g: 'group', s: 'subscription' } as const;

async function readLists(db: SqlSession, t: Tables, ref: UserRef): Promise<{ defaultList?: string; lists: StoredList[] }> {
  const defaults = await t.select(db, ref, 'privacy_default_list', ['name']);
  const listRows = await t.select(db, ref, 'privacy_list', ['name', 'id'], ' ORDER BY "name"');
  const lists: StoredList[] = [];
  for (const l of listRows) {
    const data = await db.query(
      `SELECT "t", "value", "action", "ord", "match_all", "match_iq", "match_message", "match_presence_in", "match_presence_out" FROM "privacy_list_data" WHERE "id" = ? ORDER BY "ord"`,
      [int(l.id, 'privacy_list.id')],
    );
    const items = data.map((d) => {
      const code = text(d.t, 'privacy_list_data.t').trim();
      const type = code in PRIVACY_TYPES ? PRIVACY_TYPES[code as keyof typeof PRIVACY_TYPES] : undefined;
      const all = bool(d.match_all, 'privacy_list_data.match_all');
      const stanzas: PrivacyItem['stanzas'][number][] = [];
      if (!all) {
        if (bool(d.match_message, 'privacy_list_data.match_message')) stanzas.push('message');
        if (bool(d.match_iq, 'privacy_list_data.match_iq')) stanzas.push('iq');
        if (bool(d.match_presence_in, 'privacy_list_data.match_presence_in')) stanzas.push('presence-in');
        if (bool(d.match_presence_out, 'privacy_list_data.match_presence_out')) stanzas.push('presence-out');
      }
      const action = text(d.action, 'privacy_list_data.action').trim() === 'a' ? ('allow' as const) : ('deny' as const);
      const value = text(d.value, 'privacy_list_data.value');
      return {
        ...(type ? { type, value } : {}),
        action,
        order: int(d.ord, 'privacy_list_data.ord'),
        stanzas,
        // mod_blocking's view: jid items that deny everything.
        blocking: type === 'jid' && action === 'deny' && stanzas.length === 0,
      };
    });
    lists.push({ name: text(l.name, 'privacy_list.name'), items });
  }
  const defaultList = defaults[0] ? text(defaults[0].name, 'privacy_default_list.name') : undefined;
  return { ...(defaultList !== undefined ? { defaultList } : {}), lists };
}

/**
 * XEP-0191 is a view on the default privacy list in ejabberd (mod_blocking), so the blocklist
 * is that list's blocking items, and a list mod_blocking made and holding nothing else is not
 * reported again as a privacy list.
 */
export async function readPrivacy(db: SqlSession, t: Tables, ref: UserRef): Promise<{ blocklist?: BlocklistRecord; privacy?: PrivacyRecord }> {
  const { defaultList, lists } = await readLists(db, t, ref);
  const def = lists.find((l) => l.name === defaultList);
  const blocked = def ? def.items.filter((i) => i.blocking).map((i) => i.value ?? '') : [];
  const privacyLists: PrivacyList[] = lists
    .filter((l) => !(l.name === BLOCKLIST_NAME && l.items.every((i) => i.blocking)))
    .map((l) => ({ name: l.name, items: l.items.map(({ blocking: _blocking, ...item }) => item) }));
  const keepDefault = defaultList !== undefined && privacyLists.some((l) => l.name === defaultList);
  return {
    ...(blocked.length > 0 ? { blocklist: { kind: 'blocklist', items: blocked } } : {}),
    ...(privacyLists.length > 0 || keepDefault ? { privacy: { kind: 'privacy', ...(keepDefault ? { defaultList } : {}), lists: privacyLists } } : {}),
  };
}

function withoutTmpMarker(stanza: XmlElement): XmlElement {
  if (!stanza.children.some((c) => typeof c !== 'string' && c.xmlns === MAM_TMP)) return stanza;
  return { ...stanza, children: stanza.children.filter((c) => typeof c === 'string' || c.xmlns !== MAM_TMP) };
}

export async function* readOffline(db: SqlSession, t: Tables, ref: UserRef, batch: number): AsyncGenerator<OfflineRecord> {
  let after = -1;
  for (;;) {
    const rows = await t.select(db, ref, 'spool', ['xml', 'seq', 'created_at'], ` AND "seq" > ? ORDER BY "seq" LIMIT ${batch}`, [after]);
    for (const row of rows) {
      after = int(row.seq, 'spool.seq');
      const stanza = withoutTmpMarker(parseElement(text(row.xml, 'spool.xml'), NS.client));
      const delay = stanza.children.find((c): c is XmlElement => typeof c !== 'string' && c.name === 'delay' && c.xmlns === NS.delay);
      const timestamp = delay?.attrs.stamp ?? timestampToIso(row.created_at, 'spool.created_at');
      yield { kind: 'offline', ...(timestamp !== undefined ? { timestamp } : {}), stanza };
    }
    if (rows.length < batch) return;
  }
}

/**
 * The user's archive as records, page by page. Keyset pagination on (timestamp, id): holds no
 * cursor between pages. The condition starts with `timestamp >= ?` so that the (user, timestamp)
 * index gives the page's start: with only the OR, SQLite scans the user's archive from its
 * beginning for every page. Pages rather than rows, rows as arrays, and each row straight into
 * its record: this runs once per archived message.
 */
export async function* readArchivePages(db: SqlSession, t: Tables, ref: UserRef, batch: number, signal?: AbortSignal): AsyncGenerator<ArchiveRecord[]> {
  const owner = t.owner(ref);
  const sql =
    `SELECT "timestamp", "bare_peer", "xml", "id" FROM "archive" WHERE ${owner.cond}` +
    ` AND "timestamp" >= ? AND ("timestamp" > ? OR "id" > ?) ORDER BY "timestamp", "id" LIMIT ${batch}`;
  let afterTs = -1;
  let afterId = -1;
  for (;;) {
    signal?.throwIfAborted();
    const rows = await queryArrays(db, sql, [...owner.params, afterTs, afterTs, afterId]);
    const page = new Array<ArchiveRecord>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const [timestamp, barePeer, xml, id] = rows[i] as unknown[];
      // µs since the epoch: a number from SQLite, a decimal string from PostgreSQL's and MySQL's int8.
      const stamp = text(timestamp, 'archive.timestamp');
      afterTs = typeof timestamp === 'number' ? timestamp : Number(stamp);
      afterId = int(id, 'archive.id');
      const peer = text(barePeer, 'archive.bare_peer');
      page[i] =
        peer === ''
          ? // Kept as its text where it is in the verbatim subset: the writer copies it unparsed.
            { kind: 'archive', id: stamp, timestamp: microsToIso(afterTs), stanza: storedElement(text(xml, 'archive.xml'), NS.client) }
          : { kind: 'archive', id: stamp, timestamp: microsToIso(afterTs), with: peer, stanza: storedElement(text(xml, 'archive.xml'), NS.client) };
    }
    if (page.length > 0) yield page;
    if (rows.length < batch) return;
  }
}

export async function* readPep(db: SqlSession, jid: string): AsyncGenerator<PepNodeRecord | PepItemRecord> {
  const nodes = await db.query(`SELECT "nodeid", "node" FROM "pubsub_node" WHERE "host" = ? AND "plugin" = 'pep' ORDER BY "node"`, [jid]);
  for (const n of nodes) {
    const nodeid = int(n.nodeid, 'pubsub_node.nodeid');
    const node = text(n.node, 'pubsub_node.node');
    const options = await db.query(`SELECT "name", "val" FROM "pubsub_node_option" WHERE "nodeid" = ? ORDER BY "name"`, [nodeid]);
    const config: NodeConfigField[] = [];
    for (const o of options) {
      const field = optionToField(text(o.name, 'pubsub_node_option.name'), text(o.val, 'pubsub_node_option.val'));
      if (field) config.push(field);
    }
    const states = await db.query(`SELECT "jid", "affiliation", "subscriptions" FROM "pubsub_state" WHERE "nodeid" = ? ORDER BY "jid"`, [nodeid]);
    const affiliations: PepNodeRecord['affiliations'][number][] = [];
    const subscriptions: PepNodeRecord['subscriptions'][number][] = [];
    for (const s of states) {
      const who = text(s.jid, 'pubsub_state.jid');
      const affiliation = decodeAffiliation((optionalText(s.affiliation, 'pubsub_state.affiliation') ?? '').trim());
      if (affiliation !== 'none') affiliations.push({ jid: who, affiliation });
      for (const sub of decodeSubscriptions(text(s.subscriptions, 'pubsub_state.subscriptions'))) subscriptions.push({ jid: who, ...sub });
    }
    yield { kind: 'pep-node', node, config, affiliations, subscriptions };
    const items = await db.query(
      `SELECT "itemid", "publisher", "creation", "modification", "payload" FROM "pubsub_item" WHERE "nodeid" = ? ORDER BY "modification", "itemid"`,
      [nodeid],
    );
    for (const it of items) {
      const payloadText = text(it.payload, 'pubsub_item.payload').trim();
      const published = erlangNowToIso(text(it.modification, 'pubsub_item.modification')) ?? erlangNowToIso(text(it.creation, 'pubsub_item.creation'));
      const publisher = text(it.publisher, 'pubsub_item.publisher');
      yield {
        kind: 'pep-item',
        node,
        id: text(it.itemid, 'pubsub_item.itemid'),
        payload: payloadText === '' ? null : parseElement(payloadText),
        ...(publisher !== '' ? { publisher } : {}),
        ...(published !== undefined ? { published } : {}),
      };
    }
  }
}
