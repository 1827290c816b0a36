/**
 * ejabberd 23.01's SQL rows → XEP-0227 records. Values are read as ejabberd's own modules
 * (mod_roster_sql, mod_privacy_sql, node_pep_sql…) write them; see
 * /work/shared/reference/ejabberd-23.01.md for observed rows.
 */
import type { UserRef } from '../backend.js';
import {
  element,
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
import { parseElement } from '../../xml/xml.js';
import type { SqlSession } from '../sql/dialect.js';
import { decodeAffiliation, decodeSubscriptions, erlangNowToIso, optionToField } from './pep.js';
import { bool, num, str, timestampToIso, type Tables } from './tables.js';

/** The list mod_blocking creates (and makes the default) when a user without one blocks someone. */
export const BLOCKLIST_NAME = 'Blocked contacts';

/** ejabberd's marker for messages it still has to archive; meaningless anywhere else. */
const MAM_TMP = 'urn:xmpp:mam:tmp';

export async function readAccount(db: SqlSession, t: Tables, ref: UserRef): Promise<UserStart | null> {
  const rows = await t.select(db, ref, 'users', ['password', 'serverkey', 'salt', 'iterationcount']);
  const row = rows[0];
  if (!row) return null;
  const password = str(row.password);
  const serverKey = str(row.serverkey);
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
    scram: [{ mechanism: hash === 'sha256' ? 'SCRAM-SHA-256' : 'SCRAM-SHA-1', iterationCount: num(row.iterationcount), salt: str(row.salt), storedKey, serverKey }],
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
    const jid = str(g.jid);
    groups.set(jid, [...(groups.get(jid) ?? []), str(g.grp)]);
  }
  const items: RosterItem[] = [];
  const pending: PendingSubscriptionRecord[] = [];
  for (const row of rows) {
    const jid = str(row.jid);
    const subscription = SUBSCRIPTIONS[str(row.subscription).trim()] ?? 'none';
    const ask = str(row.ask).trim();
    const out = ask === 'O' || ask === 'B' || ask === 'S';
    const inbound = ask === 'I' || ask === 'B';
    const nick = str(row.nick);
    const itemGroups = groups.get(jid) ?? [];
    if (inbound) {
      const message = str(row.askmessage);
      pending.push({ kind: 'pending-subscription', from: jid, payload: message === '' ? [] : [element('status', NS.client, {}, [message])] });
    }
    // A row that only carries an unanswered request is not in the user's roster (clients never see it).
    if (inbound && !out && subscription === 'none' && nick === '' && itemGroups.length === 0) continue;
    items.push({ jid, ...(nick !== '' ? { name: nick } : {}), subscription, ...(out ? { ask: 'subscribe' as const } : {}), groups: itemGroups });
  }
  const version = versionRows[0] ? str(versionRows[0].version) : undefined;
  if (items.length === 0 && version === undefined) return { pending };
  return { roster: { kind: 'roster', ...(version !== undefined ? { version } : {}), items }, pending };
}

export async function readVCard(db: SqlSession, t: Tables, ref: UserRef): Promise<XmlElement | undefined> {
  const rows = await t.select(db, ref, 'vcard', ['vcard']);
  const text = rows[0] ? str(rows[0].vcard) : '';
  return text === '' ? undefined : parseElement(text);
}

export async function readPrivate(db: SqlSession, t: Tables, ref: UserRef): Promise<XmlElement[]> {
  const rows = await t.select(db, ref, 'private_storage', ['namespace', 'data'], ' ORDER BY "namespace"');
  return rows.map((r) => str(r.data)).filter((d) => d !== '').map((d) => parseElement(d));
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
      [num(l.id)],
    );
    const items = data.map((d) => {
      const code = str(d.t).trim();
      const type = code in PRIVACY_TYPES ? PRIVACY_TYPES[code as keyof typeof PRIVACY_TYPES] : undefined;
      const all = bool(d.match_all);
      const stanzas: PrivacyItem['stanzas'][number][] = [];
      if (!all) {
        if (bool(d.match_message)) stanzas.push('message');
        if (bool(d.match_iq)) stanzas.push('iq');
        if (bool(d.match_presence_in)) stanzas.push('presence-in');
        if (bool(d.match_presence_out)) stanzas.push('presence-out');
      }
      const action = str(d.action).trim() === 'a' ? ('allow' as const) : ('deny' as const);
      const value = str(d.value);
      return {
        ...(type ? { type, value } : {}),
        action,
        order: num(d.ord),
        stanzas,
        // mod_blocking's view: jid items that deny everything.
        blocking: type === 'jid' && action === 'deny' && stanzas.length === 0,
      };
    });
    lists.push({ name: str(l.name), items });
  }
  const defaultList = defaults[0] ? str(defaults[0].name) : undefined;
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
      after = num(row.seq);
      const stanza = withoutTmpMarker(parseElement(str(row.xml), NS.client));
      const delay = stanza.children.find((c): c is XmlElement => typeof c !== 'string' && c.name === 'delay' && c.xmlns === NS.delay);
      const timestamp = delay?.attrs.stamp ?? timestampToIso(row.created_at);
      yield { kind: 'offline', ...(timestamp !== undefined ? { timestamp } : {}), stanza };
    }
    if (rows.length < batch) return;
  }
}

export interface ArchiveRow {
  readonly timestamp: string;
  readonly barePeer: string;
  readonly xml: string;
}

/**
 * Keyset pagination on (timestamp, id): holds no cursor between pages. The condition starts with
 * `timestamp >= ?` so that the (user, timestamp) index gives the page's start: with only the OR,
 * SQLite scanned the user's archive from its beginning for every page (75 ms a page 900,000 rows
 * in, against 0.3 ms), which made a 1M-message export take 221 s.
 */
export async function* readArchiveRows(db: SqlSession, t: Tables, ref: UserRef, batch: number, signal?: AbortSignal): AsyncGenerator<ArchiveRow> {
  let afterTs = '-1';
  let afterId = -1;
  for (;;) {
    signal?.throwIfAborted();
    const rows = await t.select(
      db,
      ref,
      'archive',
      ['timestamp', 'bare_peer', 'xml', 'id'],
      ` AND "timestamp" >= ? AND ("timestamp" > ? OR "id" > ?) ORDER BY "timestamp", "id" LIMIT ${batch}`,
      [Number(afterTs), Number(afterTs), afterId],
    );
    for (const row of rows) {
      afterTs = str(row.timestamp);
      afterId = num(row.id);
      yield { timestamp: afterTs, barePeer: str(row.bare_peer), xml: str(row.xml) };
    }
    if (rows.length < batch) return;
  }
}

export async function* readPep(db: SqlSession, jid: string): AsyncGenerator<PepNodeRecord | PepItemRecord> {
  const nodes = await db.query(`SELECT "nodeid", "node" FROM "pubsub_node" WHERE "host" = ? AND "plugin" = 'pep' ORDER BY "node"`, [jid]);
  for (const n of nodes) {
    const nodeid = num(n.nodeid);
    const node = str(n.node);
    const options = await db.query(`SELECT "name", "val" FROM "pubsub_node_option" WHERE "nodeid" = ? ORDER BY "name"`, [nodeid]);
    const config: NodeConfigField[] = [];
    for (const o of options) {
      const field = optionToField(str(o.name), str(o.val));
      if (field) config.push(field);
    }
    const states = await db.query(`SELECT "jid", "affiliation", "subscriptions" FROM "pubsub_state" WHERE "nodeid" = ? ORDER BY "jid"`, [nodeid]);
    const affiliations: PepNodeRecord['affiliations'][number][] = [];
    const subscriptions: PepNodeRecord['subscriptions'][number][] = [];
    for (const s of states) {
      const who = str(s.jid);
      const affiliation = decodeAffiliation(str(s.affiliation).trim());
      if (affiliation !== 'none') affiliations.push({ jid: who, affiliation });
      for (const sub of decodeSubscriptions(str(s.subscriptions))) subscriptions.push({ jid: who, ...sub });
    }
    yield { kind: 'pep-node', node, config, affiliations, subscriptions };
    const items = await db.query(
      `SELECT "itemid", "publisher", "creation", "modification", "payload" FROM "pubsub_item" WHERE "nodeid" = ? ORDER BY "modification", "itemid"`,
      [nodeid],
    );
    for (const it of items) {
      const payloadText = str(it.payload).trim();
      const published = erlangNowToIso(str(it.modification)) ?? erlangNowToIso(str(it.creation));
      const publisher = str(it.publisher);
      yield {
        kind: 'pep-item',
        node,
        id: str(it.itemid),
        payload: payloadText === '' ? null : parseElement(payloadText),
        ...(publisher !== '' ? { publisher } : {}),
        ...(published !== undefined ? { published } : {}),
      };
    }
  }
}
