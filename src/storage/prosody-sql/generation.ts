/**
 * Which Prosody generation uses a database, told from what it leaves there: 13 creates
 * `prosody_unique_index` on its first connection (SQLite, PostgreSQL; not MySQL) and writes the
 * 13-only stores `account_roles` and `account_activity`. Nothing of this kind means 0.12, or a
 * 13 that has not run yet: `storage.serverVersion` in the config settles it then.
 */
import type { ProsodyVersion } from '../prosody/accounts.js';
import { indexExists } from '../sql/catalog.js';
import type { SqlDialect } from '../sql/dialect.js';

const THIRTEEN_STORES = ['account_roles', 'account_activity'];

/** 13 when the database shows it, else undefined (0.12, or nothing to tell by). */
export async function detectProsodyVersion(db: SqlDialect): Promise<ProsodyVersion | undefined> {
  if (!(await db.tableExists('prosody'))) return undefined;
  if (await indexExists(db, db.name, 'prosody_unique_index')) return '13';
  const rows = await db.query(`SELECT 1 AS "present" FROM "prosody" WHERE "store" IN (?, ?) LIMIT 1`, THIRTEEN_STORES);
  return rows.length > 0 ? '13' : undefined;
}
