/**
 * A real ejabberd (23.01 from Debian, or 24.12 from the rig's backports unpack) for integration tests: its own ejabberd.yml, spool,
 * log, Erlang node name and cookie, loopback ports and (for postgres/mysql) database.
 *
 * /usr/sbin/ejabberdctl is not used: as root it re-runs itself as the `ejabberd` user (which
 * cannot read a root-owned temp dir) and its ejabberdctl.cfg overrides `--config`. `erl` is
 * started directly, as ejabberdctl would, so the node runs as the test user with our paths.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'vitest';
import pg from 'pg';
import mysql from 'mysql2/promise';
import type { EjabberdSqlConnection } from '../../src/storage/ejabberd-sql/index.js';
import { binaryAvailable, isCI } from './prosody.js';
import { freePorts } from './ports.js';
import { defaultEjabberdVersion, ejabberdInstall, type EjabberdVersion } from './server-versions.js';
import { createTestDatabase, dropTestDatabase, sqlServer, type SqlServer, type SqlServerKind } from '../../bench/sql-databases.js';

export type { EjabberdVersion } from './server-versions.js';

export const ERL_BIN = process.env.XPORTA_ERL_BIN ?? '/usr/bin/erl';
/** ejabberd 23.01's OTP application dir (ERL_LIBS for `erl`) and schema files. */
export const EJABBERD_LIBS = ejabberdInstall('23.01').erlLibs;
export const EJABBERD_SQL_DIR = ejabberdInstall('23.01').sqlDir;

export type EjabberdStorage = 'sqlite' | SqlServerKind;

const warned = new Set<string>();

export function ejabberdAvailable(version: EjabberdVersion = defaultEjabberdVersion()): boolean {
  return binaryAvailable(ERL_BIN) && existsSync(ejabberdInstall(version).marker);
}

/**
 * For `describe.skipIf`: true only when ejabberd is missing outside CI. Under CI a missing
 * package throws here, naming the version, so the suite fails instead of silently skipping.
 */
export function skipWithoutEjabberd(version: EjabberdVersion = defaultEjabberdVersion()): boolean {
  if (ejabberdAvailable(version)) return false;
  const install = ejabberdInstall(version);
  const message = `ejabberd ${version} is not installed (${install.installHint}; looked for ${install.marker})`;
  if (isCI) throw new Error(`${message}; CI is set, so ejabberd ${version} tests fail instead of skipping`);
  if (!warned.has(message)) console.warn(`[xporta tests] skipping ejabberd ${version} tests: ${message}`);
  warned.add(message);
  return true;
}

export function describeWithEjabberd(name: string, fn: () => void, version: EjabberdVersion = defaultEjabberdVersion()): void {
  describe.skipIf(skipWithoutEjabberd(version))(name, fn);
}

export interface StartEjabberdOptions {
  /** Which generation; default XPORTA_EJABBERD_VERSION, else 23.01. */
  readonly version?: EjabberdVersion;
  /** Default `sqlite`. postgres/mysql get a fresh `xporta_test_*` database with ejabberd's schema. */
  readonly storage?: EjabberdStorage;
  /** `new_sql_schema`; default true. */
  readonly newSchema?: boolean;
  /** Default `['localhost']`. */
  readonly hosts?: readonly string[];
  /** `auth_scram_hash`; default sha (SHA-1). */
  readonly scramHash?: 'sha' | 'sha256' | 'sha512';
  readonly startTimeoutMs?: number;
  /** A PEM file holding certificate and key: c2s then offers (does not require) STARTTLS. */
  readonly certfile?: string;
}

export interface CtlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface EjabberdHandle {
  readonly version: EjabberdVersion;
  readonly c2sPort: number;
  /** c2s service URI for @xmpp/client. */
  readonly service: string;
  readonly hosts: readonly string[];
  readonly node: string;
  readonly rootDir: string;
  readonly configPath: string;
  readonly logPath: string;
  readonly storage: EjabberdStorage;
  readonly newSchema: boolean;
  /** SQLite file, when storage is sqlite. */
  readonly sqlitePath?: string;
  /** Database name and server, when storage is postgres/mysql. */
  readonly sql?: { readonly database: string; readonly server: SqlServer };
  readonly pid: number | undefined;
  /** `ejabberdctl <args>` against this node; never throws on a non-zero exit. */
  ctl(args: readonly string[]): Promise<CtlResult>;
  register(user: string, host: string, password: string): Promise<void>;
  /** Forgets cached roster, vCard, private data, credentials… after storage was written directly. */
  clearCache(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
  logTail(lines?: number): string;
  /** Lines ejabberd logged at error level (`[error]`) since it was first started. */
  logErrors(): string[];
}

function renderConfig(o: {
  hosts: readonly string[];
  port: number;
  storage: EjabberdStorage;
  newSchema: boolean;
  scramHash: string;
  certfile?: string;
  sqlitePath?: string;
  sql?: { database: string; server: SqlServer };
}): string {
  const q = (s: string): string => JSON.stringify(s);
  const sqlLines =
    o.storage === 'sqlite'
      ? [`sql_type: sqlite`, `sql_database: ${q(o.sqlitePath ?? '')}`]
      : [
          `sql_type: ${o.storage === 'postgres' ? 'pgsql' : 'mysql'}`,
          `sql_server: ${q(o.sql?.server.host ?? '127.0.0.1')}`,
          `sql_port: ${o.sql?.server.port ?? 0}`,
          `sql_database: ${q(o.sql?.database ?? '')}`,
          `sql_username: ${q(o.sql?.server.username ?? '')}`,
          `sql_password: ${q(o.sql?.server.password ?? '')}`,
        ];
  return [
    'hosts:',
    ...o.hosts.map((h) => `  - ${q(h)}`),
    'loglevel: info',
    o.certfile ? `certfiles: [${q(o.certfile)}]` : 'certfiles: []',
    'listen:',
    '  -',
    `    port: ${o.port}`,
    '    ip: "127.0.0.1"',
    '    module: ejabberd_c2s',
    o.certfile ? '    starttls: true' : '    starttls: false',
    ...sqlLines,
    'default_db: sql',
    `new_sql_schema: ${o.newSchema ? 'true' : 'false'}`,
    'auth_method: sql',
    'auth_password_format: scram',
    `auth_scram_hash: ${o.scramHash}`,
    's2s_access: none',
    'acl:',
    '  local:',
    '    user_regexp: ""',
    'access_rules:',
    '  local:',
    '    allow: local',
    'modules:',
    '  mod_roster:',
    '    versioning: true',
    '  mod_vcard:',
    '    db_type: sql',
    '    search: false',
    '  mod_private: {}',
    '  mod_privacy: {}',
    '  mod_blocking: {}',
    '  mod_offline: {}',
    '  mod_mam:',
    '    db_type: sql',
    '    default: always',
    '  mod_pubsub:',
    '    plugins: [flat, pep]',
    '    db_type: sql',
    '  mod_caps: {}',
    '  mod_disco: {}',
    '  mod_ping: {}',
    // get_offline_count and the other account commands tests use.
    '  mod_admin_extra: {}',
    '',
  ].join('\n');
}

/** Runs ejabberd's schema script, statement by statement (neither driver takes a whole file safely). */
export async function loadSchema(kind: SqlServerKind, database: string, server: SqlServer, newSchema: boolean, sqlDir: string): Promise<void> {
  const file = join(sqlDir, `${kind === 'postgres' ? 'pg' : 'mysql'}${newSchema ? '.new' : ''}.sql`);
  const text = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => !/^\s*--/.test(l))
    .join('\n');
  const statements = text
    .split(/;\s*\n/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (kind === 'postgres') {
    const client = new pg.Client({ host: server.host, port: server.port, user: server.username, password: server.password, database });
    await client.connect();
    try {
      for (const s of statements) await client.query(s);
    } finally {
      await client.end();
    }
  } else {
    const conn = await mysql.createConnection({ host: server.host, port: server.port, user: server.username, password: server.password, database });
    try {
      for (const s of statements) await conn.query(s);
    } finally {
      await conn.end();
    }
  }
}

const MYSQL_USER_HOSTS = ['127.0.0.1', 'localhost', '%'];

async function createMysqlUser(admin: SqlServer, database: string): Promise<SqlServer> {
  const password = randomBytes(12).toString('hex');
  const conn = await mysql.createConnection({ host: admin.host, port: admin.port, user: admin.username, password: admin.password });
  try {
    for (const host of MYSQL_USER_HOSTS) {
      await conn.query(`CREATE USER '${database}'@'${host}' IDENTIFIED BY '${password}'`);
      await conn.query(`GRANT ALL PRIVILEGES ON \`${database}\`.* TO '${database}'@'${host}'`);
    }
  } finally {
    await conn.end();
  }
  return { ...admin, username: database, password };
}

async function dropMysqlUser(admin: SqlServer, user: string): Promise<void> {
  if (!user.startsWith('xporta_test_')) return;
  const conn = await mysql.createConnection({ host: admin.host, port: admin.port, user: admin.username, password: admin.password });
  try {
    for (const host of MYSQL_USER_HOSTS) await conn.query(`DROP USER IF EXISTS '${user}'@'${host}'`);
  } finally {
    await conn.end();
  }
}

/** True once the listener answers a stream header with stream features. */
function streamReady(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let data = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => {
      socket.write(`<?xml version='1.0'?><stream:stream to='${host}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`);
    });
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('utf8');
      if (data.includes('features')) done(true);
    });
  });
}

/** Nodes still running; killed if the test process exits without stopping them. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

class EjabberdInstance implements EjabberdHandle {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  readonly service: string;
  readonly configPath: string;
  readonly logPath: string;
  private readonly cookie = randomBytes(12).toString('hex');

  constructor(
    readonly version: EjabberdVersion,
    readonly rootDir: string,
    readonly c2sPort: number,
    readonly hosts: readonly string[],
    readonly node: string,
    readonly storage: EjabberdStorage,
    readonly newSchema: boolean,
    private readonly startTimeoutMs: number,
    readonly sqlitePath: string | undefined,
    readonly sql: { readonly database: string; readonly server: SqlServer } | undefined,
  ) {
    this.service = `xmpp://127.0.0.1:${c2sPort}`;
    this.configPath = join(rootDir, 'ejabberd.yml');
    this.logPath = join(rootDir, 'logs', 'ejabberd.log');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      ERL_LIBS: ejabberdInstall(this.version).erlLibs,
      EJABBERD_CONFIG_PATH: this.configPath,
      EJABBERD_LOG_PATH: this.logPath,
      ERL_CRASH_DUMP: join(this.rootDir, 'logs', 'erl_crash.dump'),
      HOME: this.rootDir,
    };
  }

  async launch(): Promise<void> {
    const spool = join(this.rootDir, 'spool');
    mkdirSync(spool, { recursive: true });
    const child = spawn(
      ERL_BIN,
      ['-sname', this.node, '-setcookie', this.cookie, '+K', 'true', '-noinput', '-mnesia', 'dir', `"${spool}"`, '-s', 'ejabberd'],
      { cwd: this.rootDir, env: this.env(), stdio: ['ignore', 'ignore', 'ignore'] },
    );
    this.child = child;
    installExitHook();
    running.add(child);
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        running.delete(child);
        resolve();
      }),
    );
    const deadline = Date.now() + this.startTimeoutMs;
    const host = this.hosts[0] ?? 'localhost';
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`ejabberd ${this.version} exited with ${child.exitCode} during start:\n${this.logTail(30)}`);
      if (await streamReady(this.c2sPort, host)) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`ejabberd ${this.version} did not accept a stream on ${this.c2sPort} within ${this.startTimeoutMs} ms:\n${this.logTail(30)}`);
  }

  ctl(args: readonly string[]): Promise<CtlResult> {
    const name = `xporta_ctl_${randomBytes(4).toString('hex')}@localhost`;
    const child = spawn(ERL_BIN, ['-sname', name, '-setcookie', this.cookie, '-hidden', '-noinput', '-s', 'ejabberd_ctl', '-extra', this.node, ...args], {
      cwd: this.rootDir,
      env: this.env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    return new Promise((resolve) => {
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.on('error', (err) => resolve({ code: -1, stdout, stderr: stderr + err.message }));
    });
  }

  async register(user: string, host: string, password: string): Promise<void> {
    const r = await this.ctl(['register', user, host, password]);
    if (r.code !== 0) throw new Error(`ejabberdctl register ${user} ${host} failed (${r.code}): ${r.stdout}${r.stderr}`);
  }

  async clearCache(): Promise<void> {
    const r = await this.ctl(['clear_cache']);
    if (r.code !== 0) throw new Error(`ejabberdctl clear_cache failed (${r.code}): ${r.stdout}${r.stderr}`);
  }

  /** Stops only this node: `stop` over distribution, then the beam process by pid. */
  private async halt(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await this.ctl(['stop']).catch(() => undefined);
    const stopped = await Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 8000))]);
    if (!stopped) {
      child.kill('SIGKILL');
      await this.exited;
    }
  }

  async restart(): Promise<void> {
    await this.halt();
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.halt();
    if (this.sql) {
      const admin = sqlServer(this.storage as SqlServerKind);
      await dropTestDatabase(this.storage as SqlServerKind, this.sql.database, admin).catch(() => undefined);
      if (this.storage === 'mysql') await dropMysqlUser(admin, this.sql.server.username).catch(() => undefined);
    }
    if (process.env.XPORTA_KEEP_TEST_DATA !== '1') await rm(this.rootDir, { recursive: true, force: true });
  }

  logErrors(): string[] {
    let text: string;
    try {
      text = readFileSync(this.logPath, 'utf8');
    } catch {
      return [];
    }
    return text.split('\n').filter((l) => / \[error\] /.test(l));
  }

  logTail(lines = 40): string {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

export async function startEjabberd(options: StartEjabberdOptions = {}): Promise<EjabberdHandle> {
  const version = options.version ?? defaultEjabberdVersion();
  const install = ejabberdInstall(version);
  if (!ejabberdAvailable(version)) throw new Error(`ejabberd ${version} is missing (${install.marker}); wrap the suite in describeWithEjabberd() to skip`);
  const storage = options.storage ?? 'sqlite';
  const newSchema = options.newSchema ?? true;
  const hosts = options.hosts ?? ['localhost'];
  const rootDir = await mkdtemp(join(tmpdir(), 'xporta-ejabberd-'));
  mkdirSync(join(rootDir, 'logs'), { recursive: true });
  let sqlitePath: string | undefined;
  let sql: { database: string; server: SqlServer } | undefined;
  if (storage === 'sqlite') {
    // ejabberd creates its tables itself in a missing or empty SQLite file.
    sqlitePath = join(rootDir, 'ejabberd.sqlite');
  } else {
    const admin = sqlServer(storage);
    const database = await createTestDatabase(storage, admin);
    let server = admin;
    try {
      await loadSchema(storage, database, admin, newSchema, install.sqlDir);
      // p1_mysql sends an empty password as a real one ("using password: YES") and is refused:
      // ejabberd gets a user of its own, named like the database and dropped with it.
      if (storage === 'mysql') server = await createMysqlUser(admin, database);
      sql = { database, server };
    } catch (err) {
      await dropTestDatabase(storage, database, server).catch(() => undefined);
      await rm(rootDir, { recursive: true, force: true });
      throw err;
    }
  }
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error('no free port');
  const node = `xporta_ej_${randomBytes(4).toString('hex')}@localhost`;
  await writeFile(join(rootDir, 'ejabberd.yml'), renderConfig({ hosts, port, storage, newSchema, scramHash: options.scramHash ?? 'sha', ...(options.certfile ? { certfile: options.certfile } : {}), ...(sqlitePath ? { sqlitePath } : {}), ...(sql ? { sql } : {}) }));
  const instance = new EjabberdInstance(version, rootDir, port, hosts, node, storage, newSchema, options.startTimeoutMs ?? 30_000, sqlitePath, sql);
  try {
    await instance.launch();
    // ejabberd creates its SQLite tables on the first SQL query, not at start: make it query now,
    // so a test can write the database before any account exists.
    const r = await instance.ctl(['registered_users', hosts[0] ?? 'localhost']);
    if (r.code !== 0) throw new Error(`ejabberdctl registered_users failed (${r.code}): ${r.stdout}${r.stderr}`);
  } catch (err) {
    await instance.stop().catch(() => undefined);
    throw err;
  }
  return instance;
}

/** EjabberdSqlBackend connection options for a test ejabberd's database. */
export function ejabberdConnection(ej: EjabberdHandle): EjabberdSqlConnection {
  if (ej.storage === 'sqlite') return { dialect: 'sqlite', database: ej.sqlitePath ?? '' };
  const sql = ej.sql;
  if (!sql) throw new Error('no database');
  const server = { host: sql.server.host, port: sql.server.port, user: sql.server.username, password: sql.server.password, database: sql.database };
  return ej.storage === 'postgres' ? { dialect: 'postgresql', ...server } : { dialect: 'mysql', ...server };
}
