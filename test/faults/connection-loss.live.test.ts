/**
 * Connection loss, deadlocks and serialization failures on the networked databases, through the
 * real HTTP service: a killed connection mid-import is retried (the document is spooled), a
 * connection that keeps dying ends in 503 with Retry-After and an unchanged store, the process
 * never crashes and the next request works.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountDocument } from '../support/documents.js';
import { isCI } from '../support/prosody.js';
import { createTestDatabase, dropTestDatabase, sqlServer, sqlServerAvailable, type SqlServerKind } from '../../bench/sql-databases.js';
import { archiveCount, exportDoc, importDoc, startService, TOKEN, type TestService } from '../support/service.js';

const skipWithout = async (kind: SqlServerKind): Promise<boolean> => !isCI && !(await sqlServerAvailable(kind));

/** Kills the service's connections to one database: each call ends every one it finds. */
interface Killer {
  /** Whether a statement of the import (an INSERT, a bulk load) is running or its transaction is open. */
  importRunning(): Promise<boolean>;
  killAll(): Promise<number>;
  close(): Promise<void>;
}

async function pgKiller(database: string): Promise<Killer> {
  const s = sqlServer('postgres');
  const client = new pg.Client({ host: s.host, port: s.port, user: s.username, password: s.password, database: 'postgres' });
  await client.connect();
  return {
    importRunning: async () =>
      (
        await client.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND (state = 'idle in transaction' OR query ILIKE 'INSERT%' OR query ILIKE 'COPY%')`,
          [database],
        )
      ).rowCount! > 0,
    killAll: async () =>
      (await client.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [database])).rowCount ??
      0,
    close: () => client.end(),
  };
}

async function mariadbKiller(database: string): Promise<Killer> {
  const s = sqlServer('mysql');
  const conn = await mysql.createConnection({ host: s.host, port: s.port, user: s.username, password: s.password });
  const ids = async (where: string): Promise<number[]> => {
    const [rows] = await conn.query(`SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID() ${where}`, [database]);
    return (rows as { ID: number }[]).map((r) => Number(r.ID));
  };
  return {
    importRunning: async () => (await ids(`AND (INFO LIKE 'INSERT%' OR INFO LIKE 'LOAD DATA%')`)).length > 0,
    killAll: async () => {
      let n = 0;
      for (const id of await ids('')) {
        await conn.query(`KILL ${id}`).then(
          () => n++,
          () => undefined, // already gone
        );
      }
      return n;
    },
    close: () => conn.end(),
  };
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const cases: { kind: SqlServerKind; driver: 'postgres' | 'mysql'; killer: (db: string) => Promise<Killer> }[] = [
  { kind: 'postgres', driver: 'postgres', killer: pgKiller },
  { kind: 'mysql', driver: 'mysql', killer: mariadbKiller },
];

for (const { kind, driver, killer } of cases) {
  describe.skipIf(await skipWithout(kind))(`connection loss on ${kind}`, () => {
    let database: string;
    let service: TestService;
    let kill: Killer;
    const small = accountDocument({ host: 'localhost', user: 'alice', password: 'pw', archiveCount: 5 });
    const large = accountDocument({ host: 'localhost', user: 'alice', password: 'pw', archiveCount: 40_000 });

    beforeAll(async () => {
      database = await createTestDatabase(kind);
      const s = sqlServer(kind);
      service = await startService({ type: 'prosody-sql', driver, host: s.host, port: s.port, username: s.username, ...(s.password ? { password: s.password } : {}), database });
      kill = await killer(database);
    }, 60_000);
    afterAll(async () => {
      await kill?.close();
      await service?.close();
      if (database) await dropTestDatabase(kind, database);
    });

    it('a connection killed once mid-import is retried: 200 and the new data', async () => {
      expect((await importDoc(service.app, 'alice@localhost', small)).status).toBe(200);
      const pending = importDoc(service.app, 'alice@localhost', large);
      await until(() => kill.importRunning(), 60_000);
      expect(await kill.killAll()).toBeGreaterThan(0);
      const res = await pending;
      expect(res.status, res.body).toBe(200);
      const after = await exportDoc(service.app, 'alice@localhost');
      expect(after.status).toBe(200);
      expect(archiveCount(after.body)).toBe(40_000);
    }, 180_000);

    it('a host import whose connection is killed once mid-account retries that account from the spool', async () => {
      expect((await importDoc(service.app, 'alice@localhost', small)).status).toBe(200);
      const pending = service.app.inject({
        method: 'PUT',
        url: '/v1/hosts/localhost/import?mode=replace',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/xml' },
        payload: large,
      });
      await until(() => kill.importRunning(), 60_000);
      expect(await kill.killAll()).toBeGreaterThan(0);
      const res = await pending;
      expect(res.statusCode, res.body).toBe(200);
      const result = JSON.parse(res.body) as { users: { user: string; error?: string; counts?: Record<string, number> }[]; progress: { failed: number } };
      expect(result.progress.failed).toBe(0);
      expect(result.users[0]).toMatchObject({ user: 'alice@localhost', counts: { archive: 40_000 } });
      expect(archiveCount((await exportDoc(service.app, 'alice@localhost')).body)).toBe(40_000);
    }, 180_000);

    it('a connection that keeps dying: 503 with Retry-After, store unchanged, the service keeps serving', async () => {
      expect((await importDoc(service.app, 'alice@localhost', small)).status).toBe(200);
      const before = await exportDoc(service.app, 'alice@localhost');
      expect(archiveCount(before.body)).toBe(5);

      const pending = importDoc(service.app, 'alice@localhost', large);
      let settled = false;
      void pending.finally(() => (settled = true));
      await until(() => kill.importRunning(), 60_000);
      let kills = 0;
      while (!settled) {
        kills += await kill.killAll();
        await new Promise((r) => setTimeout(r, 10));
      }
      const res = await pending;
      expect(res.status, res.body).toBe(503);
      expect(res.headers['retry-after']).toMatch(/^\d+$/);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(JSON.parse(res.body)).toMatchObject({ type: 'urn:xporta:problem:storage-unavailable', status: 503 });
      expect(kills).toBeGreaterThan(1);

      const unchanged = await exportDoc(service.app, 'alice@localhost');
      expect(unchanged.status).toBe(200);
      expect(unchanged.body).toBe(before.body);
      const next = await importDoc(service.app, 'alice@localhost', small);
      expect(next.status, next.body).toBe(200);
    }, 180_000);
  });
}

describe.skipIf(await skipWithout('mysql'))('concurrent imports on MariaDB', () => {
  let database: string;
  let service: TestService;

  beforeAll(async () => {
    database = await createTestDatabase('mysql');
    const s = sqlServer('mysql');
    service = await startService(
      { type: 'prosody-sql', driver: 'mysql', host: s.host, port: s.port, username: s.username, ...(s.password ? { password: s.password } : {}), database },
      { XPORTA_LIMITS__MAX_CONCURRENT_IMPORTS: '20' },
    );
  }, 60_000);
  afterAll(async () => {
    await service?.close();
    if (database) await dropTestDatabase('mysql', database);
  });

  it('20 concurrent imports of different accounts all succeed, twice (create, then replace)', async () => {
    const users = Array.from({ length: 20 }, (_, i) => `user${i}`);
    for (let round = 0; round < 2; round++) {
      const answers = await Promise.all(
        users.map((user) => importDoc(service.app, `${user}@localhost`, accountDocument({ host: 'localhost', user, password: 'pw', archiveCount: 300 }))),
      );
      expect(answers.map((a) => a.status)).toEqual(users.map(() => 200));
    }
    for (const user of users) expect(archiveCount((await exportDoc(service.app, `${user}@localhost`)).body)).toBe(300);
  }, 300_000);
});
