/**
 * Account locks across processes: the service (this process) and the built CLI (a child process)
 * on one storage never import into one account at once. Whoever comes second is refused (HTTP 409,
 * CLI exit 75) and the account holds exactly the winner's import. On PostgreSQL and MariaDB the
 * database's own locks keep them apart; on SQLite, lock files under the shared dataDir.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceContext } from '../../src/core/context.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import { advisoryKey, namedLockKey } from '../../src/storage/account-lock.js';
import { accountDocument } from '../support/documents.js';
import { isCI } from '../support/prosody.js';
import { createTestDatabase, dropTestDatabase, sqlServer, sqlServerAvailable, type SqlServerKind } from '../../bench/sql-databases.js';
import { archiveCount, exportDoc, importDoc, startService, TOKEN, type TestService } from '../support/service.js';
import { REPO_ROOT } from '../support/paths.js';

const root = REPO_ROOT;
const cli = join(root, 'dist', 'cli.js');

beforeAll(() => {
  if (!existsSync(cli)) {
    const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('build failed');
  }
}, 120_000);

// Under CI a missing database server fails the run instead of skipping it.
const skipWithout = async (kind: SqlServerKind): Promise<boolean> => !isCI && !(await sqlServerAvailable(kind));

interface Made {
  readonly storage: Record<string, unknown>;
  readonly drop: () => Promise<void>;
  /** Whether some process holds the account's lock, asked without taking it (a probe that took it could turn the holder away). */
  readonly held: (jid: string) => Promise<boolean>;
}

interface Target {
  readonly name: string;
  readonly skip: boolean;
  setup(dir: string): Promise<Made>;
}

const targets: Target[] = [
  {
    name: 'SQLite',
    skip: false,
    setup: (dir) =>
      Promise.resolve({
        storage: { type: 'prosody-sql', driver: 'sqlite', database: join(dir, 'prosody.sqlite') },
        drop: () => Promise.resolve(),
        held: (jid: string) => Promise.resolve(existsSync(join(dir, 'locks', `${createHash('sha256').update(jid).digest('hex').slice(0, 32)}.x`))),
      }),
  },
  ...(['postgres', 'mysql'] as const).map((kind) => ({
    name: kind === 'postgres' ? 'PostgreSQL' : 'MariaDB',
    skip: false,
    async setup(): Promise<Made> {
      const database = await createTestDatabase(kind);
      const s = sqlServer(kind);
      const connection = { host: s.host, port: s.port, user: s.username, password: s.password, database };
      const held =
        kind === 'postgres'
          ? async (jid: string): Promise<boolean> => {
              const client = new pg.Client(connection);
              await client.connect();
              try {
                const { rows } = await client.query('SELECT 1 FROM pg_locks WHERE locktype = $1 AND granted AND database = (SELECT oid FROM pg_database WHERE datname = $2) AND (classid::bigint << 32 | objid::bigint) = $3::bigint', ['advisory', database, advisoryKey(jid)]);
                return rows.length > 0;
              } finally {
                await client.end();
              }
            }
          : async (jid: string): Promise<boolean> => {
              const conn = await mysql.createConnection(connection);
              try {
                const [rows] = await conn.query('SELECT IS_USED_LOCK(?) AS holder', [namedLockKey(jid)]);
                return (rows as { holder: unknown }[])[0]?.holder !== null;
              } finally {
                await conn.end();
              }
            };
      return {
        storage: { type: 'prosody-sql', driver: kind, host: s.host, port: s.port, username: s.username, ...(s.password ? { password: s.password } : {}), database },
        drop: () => dropTestDatabase(kind, database),
        held,
      };
    },
  })),
];
targets[1] = { ...targets[1]!, skip: await skipWithout('postgres') };
targets[2] = { ...targets[2]!, skip: await skipWithout('mysql') };

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The CLI in a child process (never spawnSync: the service in this process must keep running). */
function runCli(args: string[], env: Record<string, string>, cwd: string): { kill: () => void; exited: Promise<{ code: number | null; output: string }> } {
  const child = spawn(process.execPath, [cli, ...args], { cwd, env: { PATH: process.env.PATH, ...env } });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return { kill: () => child.kill('SIGKILL'), exited: new Promise((res) => child.on('exit', (code) => res({ code, output }))) };
}

const JID = 'alice@localhost';
const BIG = 30_000;
const big = accountDocument({ host: 'localhost', user: 'alice', password: 'pw', archiveCount: BIG });
// Other archive ids: had both imports applied, a merge would hold both sets.
const small = accountDocument({ host: 'localhost', user: 'alice', password: 'pw', archiveCount: 7 }).replaceAll("id='arch-", "id='small-");

for (const target of targets) {
  describe.skipIf(target.skip)(`the CLI beside the service on ${target.name}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'xporta-xlocks-'));
    let service: TestService;
    let ctx: ServiceContext;
    let drop: () => Promise<void> = () => Promise.resolve();
    let held: (jid: string) => Promise<boolean>;
    let env: Record<string, string>;

    beforeAll(async () => {
      const made = await target.setup(dir);
      drop = made.drop;
      held = made.held;
      env = {
        XPORTA_DATA_DIR: dir,
        XPORTA_LOG_LEVEL: 'silent',
        XPORTA_AUDIT__FILE: join(dir, 'audit.log'),
        XPORTA_HOSTS: JSON.stringify({ localhost: { passwordHash: 'SHA-1' } }),
        XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'all', sha256: sha256Hex(TOKEN), scopes: ['export', 'import', 'admin'], hosts: ['*'] }]),
        XPORTA_STORAGE: JSON.stringify(made.storage),
      };
      // One dataDir for both, as one configuration on one machine gives them.
      service = await startService(made.storage, { XPORTA_DATA_DIR: dir });
      ctx = (service.app as FastifyInstance & { ctx: ServiceContext }).ctx;
      writeFileSync(join(dir, 'big.xml'), big);
      writeFileSync(join(dir, 'small.xml'), small);
    }, 60_000);

    afterAll(async () => {
      await service?.close();
      await drop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('a CLI import while the service imports exits 75, and the account holds only the service import', async () => {
      const http = importDoc(service.app, JID, big);
      await until(() => ctx.locks.isBusy(JID));
      const cliRun = await runCli(['import', JID, 'small.xml', '--create-account', '--quiet'], env, dir).exited;
      expect(cliRun.code, cliRun.output).toBe(75);
      expect(cliRun.output).toMatch(/another operation on alice@localhost is running/);
      expect((await http).status).toBe(200);
      expect(archiveCount((await exportDoc(service.app, JID)).body)).toBe(BIG);
    }, 180_000);

    it('a service import while the CLI imports gets 409, and the account holds only the CLI import', async () => {
      const cliRun = runCli(['import', JID, 'big.xml', '--mode', 'replace', '--quiet'], env, dir).exited;
      await until(() => held(JID));
      const http = await importDoc(service.app, JID, small);
      expect(http.status, http.body).toBe(409);
      const done = await cliRun;
      expect(done.code, done.output).toBe(0);
      const exported = await exportDoc(service.app, JID);
      expect(archiveCount(exported.body)).toBe(BIG);
      expect(exported.body).not.toContain("id='small-");
    }, 180_000);

    it('a lock whose holder died is taken over', async () => {
      // A CLI killed in the middle of its import leaves its lock behind only where files hold it.
      const running = runCli(['import', JID, 'big.xml', '--mode', 'replace', '--quiet'], env, dir);
      await until(() => held(JID));
      running.kill();
      await running.exited;
      await until(async () => {
        const lease = await ctx.locks.tryAcquire(JID, 'exclusive');
        lease?.release();
        return lease !== undefined;
      }, 30_000);
      expect(archiveCount((await exportDoc(service.app, JID)).body)).toBe(BIG);
    }, 180_000);
  });
}

describe.skipIf(targets[1]!.skip)('two services (replicas) on one PostgreSQL database', () => {
  let a: TestService;
  let b: TestService;
  let drop: () => Promise<void> = () => Promise.resolve();
  let held: (jid: string) => Promise<boolean>;

  beforeAll(async () => {
    const made = await targets[1]!.setup('');
    drop = made.drop;
    held = made.held;
    // Each has its own dataDir: only the database keeps them apart.
    a = await startService(made.storage);
    b = await startService(made.storage);
  }, 60_000);

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await drop();
  });

  it('an import into an account the other replica is importing into gets 409; the account holds one import', async () => {
    const first = importDoc(a.app, JID, big);
    await until(() => held(JID));
    const second = await importDoc(b.app, JID, small);
    expect(second.status, second.body).toBe(409);
    expect((await first).status).toBe(200);
    const exported = await exportDoc(b.app, JID);
    expect(archiveCount(exported.body)).toBe(BIG);
    expect(exported.body).not.toContain("id='small-");
  }, 180_000);
});
