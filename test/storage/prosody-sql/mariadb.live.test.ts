import { describe, expect, it } from 'vitest';
import { createIndexSql, createTableSql, prosodyTables } from '../../../src/storage/prosody-sql/index.js';
import { openMariadb, skipWithout } from '../../support/storage/databases.js';
import { prosodySqlSuite } from '../../support/storage/sql-suite.js';

describe.skipIf(await skipWithout('mysql'))('MariaDB', () => {
  prosodySqlSuite('MariaDB', openMariadb);

  it('uses the DDL util/sql.lua generates for MySQL', () => {
    const [prosody, archive] = prosodyTables('MySQL');
    expect(createTableSql(prosody!, 'MySQL', 'utf8mb4')).toBe(
      `CREATE TABLE IF NOT EXISTS "prosody" ("host" TEXT NOT NULL, "user" TEXT NOT NULL, "store" TEXT NOT NULL, "key" TEXT NOT NULL, "type" TEXT NOT NULL, "value" MEDIUMTEXT NOT NULL) CHARACTER SET 'utf8mb4' COLLATE 'utf8mb4_bin';`,
    );
    expect(createTableSql(archive!, 'MySQL', 'utf8mb4')).toContain('"sort_id" INTEGER PRIMARY KEY AUTO_INCREMENT');
    // Not unique on MySQL; every column gets a 20-character prefix.
    expect(createIndexSql(archive!.indexes[0]!, 'prosodyarchive', 'MySQL')).toBe(
      'CREATE INDEX "prosodyarchive_index" ON "prosodyarchive" ("host"(20), "user"(20), "store"(20), "key"(20));',
    );
  });
});
