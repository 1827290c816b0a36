/**
 * Privacy lists and the blocklist (`privacy_list`, `privacy_list_data`, `privacy_default_list`).
 * ejabberd keeps blocks as deny-by-JID items of the default list (mod_blocking), so the two
 * kinds share these tables: the blocklist's list is left to it when privacy lists are replaced,
 * and its items are added after the privacy lists are written.
 */
import type { PrivacyList } from '../../../records/model.js';
import type { CollectedPrivacy } from '../../import/collected.js';
import { BLOCKLIST_NAME } from '../read.js';
import { bool, int, text } from '../../sql/columns.js';
import type { ImportTarget } from './target.js';

/** `replace` of privacy: every list but the blocklist's removed, and any other default. */
export async function clearPrivacyLists({ db, t, ref }: ImportTarget): Promise<void> {
  const lists = await t.select(db, ref, 'privacy_list', ['name', 'id']);
  for (const l of lists) {
    if (text(l.name, 'privacy_list.name') === BLOCKLIST_NAME) continue;
    const id = int(l.id, 'privacy_list.id');
    await db.run(`DELETE FROM "privacy_list_data" WHERE "id" = ?`, [id]);
    await db.run(`DELETE FROM "privacy_list" WHERE "id" = ?`, [id]);
  }
  await t.delete(db, ref, 'privacy_default_list', ` AND "name" <> ?`, [BLOCKLIST_NAME]);
}

/**
 * `replace` of the blocklist: the default list's blocking items removed. Runs before any list is
 * written, so that blocks a privacy record brings along survive.
 */
export async function clearBlocks(target: ImportTarget): Promise<void> {
  const { db, t, ref } = target;
  const defaults = await t.select(db, ref, 'privacy_default_list', ['name']);
  const id = await listId(target, defaults[0] ? text(defaults[0].name, 'privacy_default_list.name') : BLOCKLIST_NAME, false);
  if (id === undefined) return;
  const rows = await db.query(`SELECT "value", "match_all" FROM "privacy_list_data" WHERE "id" = ? AND "t" = 'j' AND "action" = 'd'`, [id]);
  for (const r of rows) {
    if (bool(r.match_all, 'privacy_list_data.match_all')) {
      await db.run(`DELETE FROM "privacy_list_data" WHERE "id" = ? AND "t" = 'j' AND "action" = 'd' AND "value" = ?`, [id, text(r.value, 'privacy_list_data.value')]);
    }
  }
}

/** The list's id; with `create`, a missing list is made first. */
async function listId({ db, t, ref }: ImportTarget, name: string, create: boolean): Promise<number | undefined> {
  const find = async (): Promise<number | undefined> => {
    const rows = await t.select(db, ref, 'privacy_list', ['id'], ` AND "name" = ?`, [name]);
    return rows[0] ? int(rows[0].id, 'privacy_list.id') : undefined;
  };
  const id = await find();
  if (id !== undefined || !create) return id;
  await t.insert(db, ref, 'privacy_list', { name });
  return find();
}

/** Each list replaces the stored one of its name; the default is set when it names one of them. */
export async function writePrivacyLists(target: ImportTarget, privacy: CollectedPrivacy): Promise<void> {
  const { db, t, ref } = target;
  for (const list of privacy.lists.values()) {
    const id = await listId(target, list.name, true);
    if (id === undefined) throw new Error(`privacy list ${list.name} was not created`);
    await db.run(`DELETE FROM "privacy_list_data" WHERE "id" = ?`, [id]);
    for (const item of list.items) {
      const all = item.stanzas.length === 0;
      const has = (s: PrivacyList['items'][number]['stanzas'][number]): number => (!all && item.stanzas.includes(s) ? 1 : 0);
      await db.run(
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
    await t.delete(db, ref, 'privacy_default_list');
    await t.insert(db, ref, 'privacy_default_list', { name: privacy.defaultList });
  }
}

/** As mod_blocking does: blocking items go into the default list, made when there is none. */
export async function writeBlocklist(target: ImportTarget, blocked: ReadonlySet<string>): Promise<void> {
  const { db, t, ref } = target;
  const defaults = await t.select(db, ref, 'privacy_default_list', ['name']);
  const name = defaults[0] ? text(defaults[0].name, 'privacy_default_list.name') : BLOCKLIST_NAME;
  const id = await listId(target, name, blocked.size > 0);
  if (id === undefined) return;
  const existing = await db.query(`SELECT "t", "value", "action", "match_all" FROM "privacy_list_data" WHERE "id" = ?`, [id]);
  const blocking = existing.filter(
    (r) => text(r.t, 'privacy_list_data.t').trim() === 'j' && text(r.action, 'privacy_list_data.action').trim() === 'd' && bool(r.match_all, 'privacy_list_data.match_all'),
  );
  const present = new Set(blocking.map((r) => text(r.value, 'privacy_list_data.value')));
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
