/**
 * Which ejabberd generation wrote a database, told from its schema: 24.12 added the
 * `archive.origin_id` column (NOT NULL without a default on PostgreSQL and MySQL) and the
 * `schema_version` table, and upgrades an older schema to them itself at start.
 */
import { columnExists, tableExists } from '../sql/catalog.js';
import type { SqlSession, DialectName } from '../sql/dialect.js';

export type EjabberdVersion = '23.01' | '24.12';

export interface EjabberdSchemaTraits {
  /** `archive.origin_id` exists: every archive row must say it. */
  readonly originId: boolean;
  /** The `schema_version` table exists. */
  readonly schemaVersion: boolean;
}

export async function schemaTraits(db: SqlSession, dialect: DialectName): Promise<EjabberdSchemaTraits> {
  // One after the other: a transaction's session runs one statement at a time.
  const originId = await columnExists(db, dialect, 'archive', 'origin_id');
  const schemaVersion = await tableExists(db, dialect, 'schema_version');
  return { originId, schemaVersion };
}

/** The generation: the configured one, else 24.12 when the schema has its traits, else 23.01. */
export function ejabberdVersion(traits: EjabberdSchemaTraits, configured?: EjabberdVersion): EjabberdVersion {
  if (configured !== undefined) return configured;
  return traits.originId || traits.schemaVersion ? '24.12' : '23.01';
}
