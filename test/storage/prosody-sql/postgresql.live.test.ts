import { describe, expect, it } from 'vitest';
import { createIndexSql, createTableSql, prosodyTables } from '../../../src/storage/prosody-sql/index.js';
import { openPostgres, skipWithout } from '../../support/storage/databases.js';
import { prosodySqlSuite } from '../../support/storage/sql-suite.js';

describe.skipIf(await skipWithout('postgres'))('PostgreSQL', () => {
  prosodySqlSuite('PostgreSQL', openPostgres);

  it('uses the DDL util/sql.lua generates for PostgreSQL', () => {
    const [prosody, archive] = prosodyTables('PostgreSQL');
    expect(createTableSql(archive!, 'PostgreSQL', 'utf8')).toBe(
      'CREATE TABLE IF NOT EXISTS "prosodyarchive" ("sort_id" BIGSERIAL PRIMARY KEY, "host" TEXT NOT NULL, "user" TEXT NOT NULL, "store" TEXT NOT NULL, "key" TEXT NOT NULL, "when" INTEGER NOT NULL, "with" TEXT NOT NULL, "type" TEXT NOT NULL, "value" TEXT NOT NULL);',
    );
    expect(createIndexSql(prosody!.indexes[0]!, 'prosody', 'PostgreSQL')).toBe('CREATE INDEX IF NOT EXISTS "prosody_index" ON "prosody" ("host", "user", "store", "key");');
    expect(createIndexSql(archive!.indexes[0]!, 'prosodyarchive', 'PostgreSQL')).toBe(
      'CREATE UNIQUE INDEX IF NOT EXISTS "prosodyarchive_index" ON "prosodyarchive" ("host", "user", "store", "key");',
    );
  });
});
