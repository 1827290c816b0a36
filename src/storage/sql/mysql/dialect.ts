/**
 * MySQL/MariaDB through mysql2. Connections use the widest `utf8%` character set (utf8mb4) with
 * its `_bin` collation, so that keys compare byte for byte.
 */
import type mysql from 'mysql2/promise';
import { namedLockKey, type AccountLease, type AccountLockMode } from '../../account-lock.js';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { backtickIdentifiers, sessionLockLease, type RowStream, type SqlDialect, type SqlParam, type SqlRow, type SqlSnapshot, type SqlTransaction } from '../dialect.js';
import { BulkLoadWarningError, TextRowStream } from '../row-stream.js';
import { PipelinedTransaction, type Executed } from '../write-behind.js';

export interface MysqlOptions {
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  readonly password?: string;
  readonly database: string;
  readonly maxConnections?: number;
}

type Queryable = Pick<mysql.PoolConnection, 'query'>;

async function exec(conn: Queryable, sql: string, params: readonly SqlParam[]): Promise<SqlRow[] | mysql.ResultSetHeader> {
  const [result] = await conn.query(backtickIdentifiers(sql), [...params]);
  return result as SqlRow[] | mysql.ResultSetHeader;
}

function rowsOf(result: SqlRow[] | mysql.ResultSetHeader): SqlRow[] {
  return Array.isArray(result) ? result : [];
}

function affectedOf(result: SqlRow[] | mysql.ResultSetHeader): number {
  return Array.isArray(result) ? 0 : result.affectedRows;
}

/**
 * mysql2 writes a LOCAL INFILE stream to the socket as fast as it flows, whatever the socket's
 * buffer holds: the stream waits for the socket to drain instead.
 */
function socketOf(conn: mysql.PoolConnection): Socket | undefined {
  return (conn as unknown as { connection?: { stream?: Socket } }).connection?.stream;
}

class MysqlTransaction extends PipelinedTransaction {
  private readonly staging: string[] = [];

  constructor(private readonly conn: mysql.PoolConnection) {
    super();
  }

  /**
   * LOAD DATA LOCAL INFILE from a stream (mysql2's infileStreamFactory; the file name is never
   * opened). With LOCAL the server turns data errors into warnings, since it cannot stop the
   * transfer: a load with any warning fails, and the transaction with it.
   */
  async streamRows(table: string, columns: readonly string[]): Promise<RowStream> {
    await this.settle();
    const text = new PassThrough();
    const sql =
      `LOAD DATA LOCAL INFILE 'xporta-rows' INTO TABLE \`${table}\` CHARACTER SET utf8mb4 ` +
      `FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${columns.map((c) => `\`${c}\``).join(', ')})`;
    // mysql2 asks for the stream once the server wants the rows, which may be after the load was
    // aborted: a stream destroyed by then emits nothing more, and the connection would wait for
    // the end of the file forever. It gets one that fails once listened to: mysql2 then ends the
    // file and fails the load.
    const source = (): PassThrough => {
      if (!text.destroyed) return text;
      const failed = new PassThrough();
      process.nextTick(() => failed.destroy(text.errored ?? new Error('the load was aborted')));
      return failed;
    };
    const done = this.conn.query({ sql, infileStreamFactory: source }).then(([result]) => {
      const header = result as mysql.ResultSetHeader;
      if (header.warningStatus > 0) throw new BulkLoadWarningError(`the database changed ${header.warningStatus} value(s) while loading ${table}: ${header.info}`);
      return header.affectedRows;
    });
    const socket = socketOf(this.conn);
    const ready = async (): Promise<void> => {
      if (socket?.writableNeedDrain) await once(socket, 'drain');
    };
    const stream = new TextRowStream(text, done, ready);
    this.track(stream);
    return stream;
  }

  /** Dropped before the transaction ends: MySQL keeps temporary tables for the connection's life. */
  async createStagingTable(name: string, like: string, columns: readonly string[]): Promise<void> {
    await this.run(`DROP TEMPORARY TABLE IF EXISTS "${name}"`);
    await this.run(`CREATE TEMPORARY TABLE "${name}" AS SELECT ${columns.map((c) => `"${c}"`).join(', ')}, CAST(0 AS SIGNED) AS "seq" FROM "${like}" LIMIT 0`);
    this.staging.push(name);
  }

  protected async execute(sql: string, params: readonly SqlParam[]): Promise<Executed> {
    const result = await exec(this.conn, sql, params);
    return { rows: rowsOf(result), changes: affectedOf(result) };
  }

  protected async end(commit: boolean): Promise<void> {
    try {
      // DROP TEMPORARY TABLE does not end the transaction.
      for (const name of this.staging.splice(0)) await this.conn.query(`DROP TEMPORARY TABLE IF EXISTS \`${name}\``);
      await (commit ? this.conn.commit() : this.conn.rollback());
      this.conn.release();
    } catch (err) {
      // A connection in an unknown state must not go back to the pool.
      this.conn.destroy();
      throw err;
    }
  }
}

export class MysqlDialect implements SqlDialect {
  readonly name = 'mysql';
  private pool: Promise<mysql.Pool> | undefined;
  private charsetName: Promise<string> | undefined;
  /** One connection holds every named lock of this process. */
  private lockConnection: Promise<mysql.Connection> | undefined;

  constructor(private readonly options: MysqlOptions) {}

  private lockSession(): Promise<mysql.Connection> {
    if (this.lockConnection) return this.lockConnection;
    const session: Promise<mysql.Connection> = import('mysql2/promise').then(async ({ default: { createConnection } }) => {
      const conn = await createConnection({
        host: this.options.host,
        port: this.options.port,
        user: this.options.user,
        password: this.options.password,
        database: this.options.database,
      });
      // A lost connection has lost its locks on the server too; the next lease opens a new one.
      conn.on('error', () => {
        if (this.lockConnection === session) this.lockConnection = undefined;
      });
      return conn;
    });
    this.lockConnection = session;
    session.catch(() => {
      if (this.lockConnection === session) this.lockConnection = undefined;
    });
    return session;
  }

  /**
   * GET_LOCK with no wait. MariaDB and MySQL have no shared named locks: a shared lease is taken
   * exclusively too, so two replicas cannot export one account at the same moment.
   */
  async tryLock(jid: string, _mode: AccountLockMode): Promise<AccountLease | undefined> {
    const conn = await this.lockSession();
    const key = namedLockKey(jid);
    const [rows] = await conn.query('SELECT GET_LOCK(?, 0) AS ok', [key]);
    if (Number((rows as SqlRow[])[0]?.ok) !== 1) return undefined;
    return sessionLockLease(() => conn.query('SELECT RELEASE_LOCK(?)', [key]));
  }

  /** mysql2 is loaded on first use, so that a service on another store does not carry it. */
  private pooled(): Promise<mysql.Pool> {
    this.pool ??= import('mysql2/promise').then(({ default: { createPool } }) =>
      createPool({
        host: this.options.host,
        port: this.options.port,
        user: this.options.user,
        password: this.options.password,
        database: this.options.database,
        connectionLimit: this.options.maxConnections ?? 4,
        charset: 'UTF8MB4_BIN',
        supportBigNumbers: true,
      }),
    );
    return this.pool;
  }

  async query(sql: string, params: readonly SqlParam[] = []): Promise<SqlRow[]> {
    return rowsOf(await exec(await this.pooled(), sql, params));
  }

  async run(sql: string, params: readonly SqlParam[] = []): Promise<number> {
    return affectedOf(await exec(await this.pooled(), sql, params));
  }

  async begin(): Promise<SqlTransaction> {
    const conn = await (await this.pooled()).getConnection();
    try {
      // READ COMMITTED takes no gap locks: under REPEATABLE READ, imports of different accounts
      // lock gaps of the shared (host, user, store, key) index and deadlock each other. Each
      // account's rows are written by one import at a time (the account lock), so nothing the
      // import reads can change under it in a way the stricter level would catch.
      await conn.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await conn.beginTransaction();
    } catch (err) {
      conn.destroy();
      throw err;
    }
    return new MysqlTransaction(conn);
  }

  /** InnoDB's consistent read view, taken at START TRANSACTION rather than at the first read. */
  async snapshot(): Promise<SqlSnapshot> {
    const conn = await (await this.pooled()).getConnection();
    try {
      await conn.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    } catch (err) {
      conn.destroy();
      throw err;
    }
    let ended = false;
    return {
      query: async (sql, params = []) => rowsOf(await exec(conn, sql, params)),
      run: async (sql, params = []) => affectedOf(await exec(conn, sql, params)),
      end: async () => {
        if (ended) return;
        ended = true;
        try {
          await conn.query('COMMIT');
          conn.release();
        } catch {
          conn.destroy();
        }
      },
    };
  }

  async tableExists(table: string): Promise<boolean> {
    const rows = await this.query(
      `SELECT 1 AS "present" FROM "information_schema"."tables" WHERE "table_schema" = DATABASE() AND "table_name" = ?`,
      [table],
    );
    return rows.length > 0;
  }

  /** The widest `utf8%` character set, asked of the server once. */
  charset(): Promise<string> {
    this.charsetName ??= this.query(
      `SELECT "CHARACTER_SET_NAME" FROM "information_schema"."CHARACTER_SETS" WHERE "CHARACTER_SET_NAME" LIKE 'utf8%' ORDER BY "MAXLEN" DESC LIMIT 1`,
    ).then((rows) => {
      const name = rows[0]?.CHARACTER_SET_NAME;
      return typeof name === 'string' ? name : 'utf8';
    });
    return this.charsetName;
  }

  async close(): Promise<void> {
    const locks = this.lockConnection;
    this.lockConnection = undefined;
    if (locks) await (await locks.catch(() => undefined))?.end().catch(() => undefined);
    if (this.pool) await (await this.pool).end();
  }
}
