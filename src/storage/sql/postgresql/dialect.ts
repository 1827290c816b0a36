/**
 * PostgreSQL through pg: a pool for reads, one pooled client per transaction. pg is loaded on
 * first use, so that a service or CLI on another store does not carry its memory.
 */
import type pg from 'pg';
import { advisoryKey, type AccountLease, type AccountLockMode } from '../../account-lock.js';
import { finished } from 'node:stream/promises';
import { numberedPlaceholders, sessionLockLease, type RowStream, type SqlDialect, type SqlParam, type SqlRow, type SqlSnapshot, type SqlTransaction } from '../dialect.js';
import { TextRowStream } from '../row-stream.js';
import { PipelinedTransaction, type Executed } from '../write-behind.js';

export interface PostgresqlOptions {
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  readonly password?: string;
  readonly database: string;
  readonly maxConnections?: number;
}

type Queryable = Pick<pg.PoolClient, 'query'>;

async function query(client: Queryable, sql: string, params: readonly SqlParam[]): Promise<pg.QueryResult<SqlRow>> {
  return client.query<SqlRow>(numberedPlaceholders(sql), [...params]);
}

/**
 * A checked-out client has no 'error' listener of the pool's, and an unhandled 'error' event ends
 * the process: a connection terminated under a transaction (pg_terminate_backend, a restart) must
 * only fail the statement in progress. The listener stays until the client is released; the
 * failure itself reaches the caller through the rejected query.
 */
function guardCheckedOut(client: pg.PoolClient): { broken: () => Error | undefined; release: (err?: Error | boolean) => void } {
  let failure: Error | undefined;
  const onError = (err: Error): void => {
    failure ??= err;
  };
  client.on('error', onError);
  return {
    broken: () => failure,
    release: (err?: Error | boolean) => {
      client.removeListener('error', onError);
      // A client that failed must not go back to the pool.
      client.release(err ?? failure ?? undefined);
    },
  };
}

class PostgresqlTransaction extends PipelinedTransaction {
  private readonly guard: ReturnType<typeof guardCheckedOut>;

  constructor(private readonly client: pg.PoolClient) {
    super();
    this.guard = guardCheckedOut(client);
  }

  protected async execute(sql: string, params: readonly SqlParam[]): Promise<Executed> {
    const result = await query(this.client, sql, params);
    return { rows: result.rows, changes: result.rowCount ?? 0 };
  }

  /**
   * ANALYZE inside the transaction, which sees the transaction's own rows: statistics taken before
   * a big load describe the table without them, and plans built on them can go quadratic.
   */
  async refreshStatistics(table: string): Promise<void> {
    await this.settle();
    await this.client.query(`ANALYZE "${table}"`);
  }

  /** COPY … FROM STDIN in the text format, through pg-copy-streams (loaded on first use, as pg is). */
  async streamRows(table: string, columns: readonly string[]): Promise<RowStream> {
    await this.settle();
    const { from } = (await import('pg-copy-streams')).default;
    const copy = this.client.query(from(`COPY "${table}" (${columns.map((c) => `"${c}"`).join(', ')}) FROM STDIN`));
    const done = finished(copy).then(() => copy.rowCount);
    const stream = new TextRowStream(copy, done);
    this.track(stream);
    return stream;
  }

  /** Dropped at the commit, and with everything else at a rollback. */
  async createStagingTable(name: string, like: string, columns: readonly string[]): Promise<void> {
    await this.run(`CREATE TEMPORARY TABLE "${name}" ON COMMIT DROP AS SELECT ${columns.map((c) => `"${c}"`).join(', ')}, 0::bigint AS "seq" FROM "${like}" WITH NO DATA`);
  }

  protected async end(commit: boolean): Promise<void> {
    const broken = this.guard.broken();
    if (broken) {
      this.guard.release(broken);
      if (commit) throw broken;
      return;
    }
    try {
      await this.client.query(commit ? 'COMMIT' : 'ROLLBACK');
      this.guard.release();
    } catch (err) {
      // A connection in an unknown state must not go back to the pool.
      this.guard.release(err instanceof Error ? err : true);
      throw err;
    }
  }
}

export class PostgresqlDialect implements SqlDialect {
  readonly name = 'postgresql';
  private pool: Promise<pg.Pool> | undefined;
  /** One session holds every advisory lock of this process: the pool's clients come and go. */
  private lockClient: Promise<pg.Client> | undefined;

  constructor(private readonly options: PostgresqlOptions) {}

  private lockSession(): Promise<pg.Client> {
    if (this.lockClient) return this.lockClient;
    const session: Promise<pg.Client> = import('pg').then(async ({ default: { Client } }) => {
      const client = new Client({
        host: this.options.host,
        port: this.options.port,
        user: this.options.user,
        password: this.options.password,
        database: this.options.database,
      });
      // A lost session has lost its locks on the server too; the next lease opens a new one.
      const forget = (): void => {
        if (this.lockClient === session) this.lockClient = undefined;
      };
      client.on('error', forget);
      client.on('end', forget);
      await client.connect();
      return client;
    });
    this.lockClient = session;
    session.catch(() => {
      if (this.lockClient === session) this.lockClient = undefined;
    });
    return session;
  }

  /** pg_try_advisory_lock(_shared) on the lock session; never waits. */
  async tryLock(jid: string, mode: AccountLockMode): Promise<AccountLease | undefined> {
    const client = await this.lockSession();
    const suffix = mode === 'shared' ? '_shared' : '';
    const key = advisoryKey(jid);
    const { rows } = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock${suffix}($1::bigint) AS ok`, [key]);
    if (rows[0]?.ok !== true) return undefined;
    return sessionLockLease(() => client.query(`SELECT pg_advisory_unlock${suffix}($1::bigint)`, [key]));
  }

  private pooled(): Promise<pg.Pool> {
    this.pool ??= import('pg').then(({ default: { Pool } }) => {
      const pool = new Pool({
        host: this.options.host,
        port: this.options.port,
        user: this.options.user,
        password: this.options.password,
        database: this.options.database,
        max: this.options.maxConnections ?? 4,
      });
      // An idle client that loses its server emits here; without a listener that would crash the process.
      pool.on('error', () => undefined);
      return pool;
    });
    return this.pool;
  }

  async query(sql: string, params: readonly SqlParam[] = []): Promise<SqlRow[]> {
    return (await query(await this.pooled(), sql, params)).rows;
  }

  async run(sql: string, params: readonly SqlParam[] = []): Promise<number> {
    return (await query(await this.pooled(), sql, params)).rowCount ?? 0;
  }

  async begin(): Promise<SqlTransaction> {
    const client = await (await this.pooled()).connect();
    const transaction = new PostgresqlTransaction(client);
    try {
      await client.query('BEGIN');
    } catch (err) {
      await transaction.rollback().catch(() => undefined);
      throw err;
    }
    return transaction;
  }

  /** REPEATABLE READ READ ONLY: every statement sees the snapshot the first one took. */
  async snapshot(): Promise<SqlSnapshot> {
    const client = await (await this.pooled()).connect();
    const guard = guardCheckedOut(client);
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    } catch (err) {
      guard.release(err instanceof Error ? err : true);
      throw err;
    }
    let ended = false;
    return {
      query: async (sql, params = []) => (await query(client, sql, params)).rows,
      run: async (sql, params = []) => (await query(client, sql, params)).rowCount ?? 0,
      end: async () => {
        if (ended) return;
        ended = true;
        const broken = guard.broken();
        if (broken) return guard.release(broken);
        try {
          await client.query('COMMIT');
          guard.release();
        } catch (err) {
          guard.release(err instanceof Error ? err : true);
        }
      },
    };
  }

  async tableExists(table: string): Promise<boolean> {
    const rows = await this.query(`SELECT to_regclass(?) IS NOT NULL AS "present"`, [`"${table}"`]);
    return rows[0]?.present === true;
  }

  charset(): Promise<string> {
    return Promise.resolve('utf8');
  }

  async close(): Promise<void> {
    const locks = this.lockClient;
    this.lockClient = undefined;
    if (locks) await (await locks.catch(() => undefined))?.end().catch(() => undefined);
    if (this.pool) await (await this.pool).end();
  }
}
