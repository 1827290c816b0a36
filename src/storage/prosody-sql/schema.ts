/**
 * Prosody's two tables, created with the statements mod_storage_sql.lua's `create_table()` has
 * util/sql.lua generate for each driver, so that Prosody can use a database xporta created.
 */
import type { DialectName, SqlDialect } from '../sql/dialect.js';
import type { ProsodyVersion } from '../prosody/accounts.js';

interface Column {
  readonly name: string;
  readonly type: 'TEXT' | 'MEDIUMTEXT' | 'INTEGER';
  readonly nullable?: false;
  readonly primaryKey?: true;
  readonly autoIncrement?: true;
}

interface Index {
  readonly name: string;
  readonly columns: readonly string[];
  readonly unique?: boolean;
}

interface Table {
  readonly name: string;
  readonly columns: readonly Column[];
  readonly indexes: readonly Index[];
}

const text = (name: string): Column => ({ name, type: 'TEXT', nullable: false });

/**
 * mod_storage_sql's tables. 13 names the `prosody` index `prosody_unique_index` and makes it
 * unique (not on MySQL), for its `INSERT … ON CONFLICT` map writes; 0.12 has `prosody_index`.
 */
/** The LuaDBI driver name Prosody's util/sql.lua switches on. */
export type ProsodyDriver = 'SQLite3' | 'PostgreSQL' | 'MySQL';

const DRIVERS: Readonly<Record<DialectName, ProsodyDriver>> = { sqlite: 'SQLite3', postgresql: 'PostgreSQL', mysql: 'MySQL' };

/** The driver Prosody names a database of this dialect by. */
export function prosodyDriver(dialect: DialectName): ProsodyDriver {
  return DRIVERS[dialect];
}

export function prosodyTables(driver: ProsodyDriver, version: ProsodyVersion = '0.12'): Table[] {
  const prosodyIndex: Index =
    version === '13'
      ? { name: 'prosody_unique_index', columns: ['host', 'user', 'store', 'key'], unique: driver !== 'MySQL' }
      : { name: 'prosody_index', columns: ['host', 'user', 'store', 'key'] };
  return [
    {
      name: 'prosody',
      columns: [text('host'), text('user'), text('store'), text('key'), text('type'), { name: 'value', type: 'MEDIUMTEXT', nullable: false }],
      indexes: [prosodyIndex],
    },
    {
      name: 'prosodyarchive',
      columns: [
        { name: 'sort_id', type: 'INTEGER', primaryKey: true, autoIncrement: true },
        text('host'),
        text('user'),
        text('store'),
        text('key'),
        { name: 'when', type: 'INTEGER', nullable: false },
        text('with'),
        text('type'),
        { name: 'value', type: 'MEDIUMTEXT', nullable: false },
      ],
      indexes: [
        // Not unique on MySQL (Prosody issue #1073).
        { name: 'prosodyarchive_index', columns: ['host', 'user', 'store', 'key'], unique: driver !== 'MySQL' },
        { name: 'prosodyarchive_with_when', columns: ['host', 'user', 'store', 'with', 'when'] },
        { name: 'prosodyarchive_when', columns: ['host', 'user', 'store', 'when'] },
        { name: 'prosodyarchive_sort', columns: ['host', 'user', 'store', 'sort_id'] },
      ],
    },
  ];
}

/** util/sql.lua `engine:_create_table` (without the indexes). */
export function createTableSql(table: Table, driver: ProsodyDriver, charset: string): string {
  const columns = table.columns.map((col) => {
    let type: string = col.type;
    if (type === 'MEDIUMTEXT' && driver !== 'MySQL') type = 'TEXT';
    if (col.autoIncrement && driver === 'PostgreSQL') type = 'BIGSERIAL';
    let sql = `"${col.name}" ${type}`;
    if (col.nullable === false) sql += ' NOT NULL';
    if (col.primaryKey) sql += ' PRIMARY KEY';
    if (col.autoIncrement && driver === 'MySQL') sql += ' AUTO_INCREMENT';
    if (col.autoIncrement && driver === 'SQLite3') sql += ' AUTOINCREMENT';
    return sql;
  });
  let sql = `CREATE TABLE IF NOT EXISTS "${table.name}" (${columns.join(', ')});`;
  if (driver === 'MySQL') sql = sql.replace(/;$/, ` CHARACTER SET '${charset}' COLLATE '${charset}_bin';`);
  return sql;
}

/** util/sql.lua `engine:_create_index`: MySQL gets a 20-character prefix on every column. */
export function createIndexSql(index: Index, table: string, driver: ProsodyDriver): string {
  const columns = index.columns.map((c) => (driver === 'MySQL' ? `"${c}"(20)` : `"${c}"`)).join(', ');
  const ifNotExists = driver === 'MySQL' ? '' : ' IF NOT EXISTS';
  return `CREATE${index.unique ? ' UNIQUE' : ''} INDEX${ifNotExists} "${index.name}" ON "${table}" (${columns});`;
}

/**
 * Creates whichever of the two tables is missing, with its indexes. As in Prosody, a failing index
 * is not an error: on MySQL the 20-character prefix makes every index over an INTEGER column
 * (`when`, `sort_id`) fail, so Prosody's own MySQL schema has only `prosodyarchive_index` there.
 */
export async function ensureSchema(db: SqlDialect, version: ProsodyVersion = '0.12'): Promise<{ created: string[] }> {
  const created: string[] = [];
  const charset = await db.charset();
  const driver = prosodyDriver(db.name);
  for (const table of prosodyTables(driver, version)) {
    if (await db.tableExists(table.name)) continue;
    await db.run(createTableSql(table, driver, charset));
    for (const index of table.indexes) {
      try {
        await db.run(createIndexSql(index, table.name, driver));
      } catch {
        // Same as util/sql.lua, which ignores _create_index's result.
      }
    }
    created.push(table.name);
  }
  return { created };
}
