/**
 * A real Prosody (0.12 from Debian, or 13 from the rig's backports unpack) for integration tests: its own config, data dir, ports and (for
 * postgres/mysql) database, started as a foreground child process and torn down afterwards.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdirSync, rmSync } from 'node:fs';
import { mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe } from 'vitest';
import {
  DEFAULT_PRIVILEGE,
  renderProsodyConfig,
  type PrivilegeConfig,
  type ProsodySqlParams,
  type ProsodyStorageKind,
} from './prosody-config.js';
import { connect } from 'node:net';
import { canConnect, freePorts } from './ports.js';
import { createTestDatabase, dropTestDatabase, sqlServer, type SqlServer, type SqlServerKind } from '../../bench/sql-databases.js';
import { defaultProsodyVersion, prosodyBinaries, type ProsodyVersion } from './server-versions.js';

export type { PrivilegeConfig, ProsodySqlParams, ProsodyStorageKind } from './prosody-config.js';

export type { ProsodyVersion } from './server-versions.js';

/** Prosody 0.12's binaries (Debian's package). */
export const PROSODY_BIN = prosodyBinaries('0.12').prosody;
export const PROSODYCTL_BIN = prosodyBinaries('0.12').prosodyctl;

/** Any CI marker counts: when unsure we would rather fail than skip. */
export const isCI: boolean = ((): boolean => {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
})();

const keepData = (): boolean => process.env.XPORTA_KEEP_TEST_DATA === '1';

const warned = new Set<string>();

export function binaryAvailable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * True when `path` is executable. A missing binary throws under CI (a green run must never
 * hide a missing install step) and only warns elsewhere, so a developer without it can skip.
 */
export function requireBinary(path: string, version: ProsodyVersion = '0.12'): boolean {
  if (binaryAvailable(path)) return true;
  const message = `Prosody ${version}: ${path} is not installed or not executable (${prosodyBinaries(version).installHint})`;
  if (isCI) throw new Error(`${message}; CI is set, so Prosody ${version} tests fail instead of skipping`);
  if (!warned.has(path)) console.warn(`[xporta tests] skipping Prosody ${version} tests: ${message}`);
  warned.add(path);
  return false;
}

export function prosodyAvailable(version: ProsodyVersion = defaultProsodyVersion()): boolean {
  const bins = prosodyBinaries(version);
  return binaryAvailable(bins.prosody) && binaryAvailable(bins.prosodyctl);
}

/**
 * For `describe.skipIf(...)`: true only when Prosody is missing *and* we are not in CI. Under
 * CI this throws, naming the version, so a missing package shows up as a failure.
 */
export function skipWithoutProsody(version: ProsodyVersion = defaultProsodyVersion()): boolean {
  if (prosodyAvailable(version)) return false;
  const bins = prosodyBinaries(version);
  return !(requireBinary(bins.prosody, version) && requireBinary(bins.prosodyctl, version));
}

export function describeWithProsody(name: string, fn: () => void, version: ProsodyVersion = defaultProsodyVersion()): void {
  describe.skipIf(skipWithoutProsody(version))(name, fn);
}

export interface StartProsodyOptions {
  /** Which generation; default XPORTA_PROSODY_VERSION, else 0.12. */
  readonly version?: ProsodyVersion;
  /** Default `sqlite`. postgres/mysql get a fresh `xporta_test_*` database, dropped by stop(). */
  readonly storage?: ProsodyStorageKind;
  /** Prosody's `password_hash`; decides SCRAM-SHA-1 vs SCRAM-SHA-256. Default `SHA-1`. */
  readonly passwordHash?: 'SHA-1' | 'SHA-256';
  /** VirtualHosts. Default `['localhost']`. */
  readonly hosts?: readonly string[];
  readonly component?: { readonly jid?: string; readonly secret?: string };
  /** Load mod_privilege for the component; `true` means DEFAULT_PRIVILEGE. */
  readonly privilege?: boolean | PrivilegeConfig;
  /** Open an HTTP port (mod_http) on 127.0.0.1. */
  readonly http?: boolean;
  /** Use (and create if needed) this directory instead of a fresh temp dir. */
  readonly dir?: string;
  readonly logLevel?: 'debug' | 'info';
  readonly extraModules?: readonly string[];
  readonly extraGlobalConfig?: string;
  /** How long to wait for the ports. Default 20 s. */
  readonly startTimeoutMs?: number;
  /** Database server for postgres/mysql; default sqlServer(kind). */
  readonly sqlServer?: SqlServer;
}

export interface ProsodyctlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ProsodyHandle {
  readonly version: ProsodyVersion;
  /** Ports can change on restart() if the old one was taken meanwhile: read them afresh. */
  readonly c2sPort: number;
  readonly componentPort: number;
  readonly httpPort?: number;
  /** c2s service URI for @xmpp/client. */
  readonly service: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  readonly rootDir: string;
  readonly dataDir: string;
  readonly configPath: string;
  readonly logPath: string;
  readonly storage: ProsodyStorageKind;
  readonly sql?: ProsodySqlParams;
  readonly passwordHash: 'SHA-1' | 'SHA-256';
  readonly hosts: readonly string[];
  readonly component: { readonly jid: string; readonly secret: string };
  stop(): Promise<void>;
  /** Stops and starts the same config and data (and database). */
  restart(): Promise<void>;
  /** `prosodyctl --config <configPath> ...args`; never throws on a non-zero exit. */
  prosodyctl(args: readonly string[]): Promise<ProsodyctlResult>;
  /** The last lines of Prosody's log file. */
  logTail(lines?: number): Promise<string>;
}

const STOP_GRACE_MS = 5000;
const START_ATTEMPTS = 3;
const OUTPUT_TAIL_LINES = 60;

/** Prosody's own env, minus anything that would make it read another config or preload Lua. */
function prosodyEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key === 'PROSODY_CONFIG' || key.startsWith('LUA_INIT') || key === 'PROSODYCTL_LOG_LEVEL') delete env[key];
  }
  return env;
}

class TailBuffer {
  private lines: string[] = [];
  private partial = '';
  push(chunk: Buffer | string): void {
    const parts = (this.partial + chunk.toString()).split('\n');
    this.partial = parts.pop() ?? '';
    this.lines.push(...parts);
    if (this.lines.length > OUTPUT_TAIL_LINES) this.lines.splice(0, this.lines.length - OUTPUT_TAIL_LINES);
  }
  text(): string {
    return [...this.lines, this.partial].filter((l) => l !== '').join('\n');
  }
}

async function readFrom(path: string, offset: number): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    if (size <= offset) return '';
    const buf = Buffer.alloc(size - offset);
    await handle.read(buf, 0, buf.length, offset);
    return buf.toString('utf8');
  } finally {
    await handle.close();
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

// A vitest worker that dies (crash, timeout kill, Ctrl-C) must not leave servers behind:
// 'exit' covers orderly exits, the watchdog below covers the rest.
const live = new Set<ProsodyInstance>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const instance of live) instance.killSync();
  });
}

/**
 * A shell that blocks on its stdin, which only this Node process holds. An orderly stop writes
 * a line ("stand down"); if Node dies instead, the pipe hits EOF without one and the shell
 * stops Prosody, checking the pid still runs *our* config so a recycled pid is never signalled,
 * then removes the temp dir it was given (the 'exit' hook cannot run after a SIGKILL).
 */
const WATCHDOG_SCRIPT = [
  'if read _line; then exit 0; fi',
  'ours() { grep -qF -- "$2" "/proc/$1/cmdline" 2>/dev/null; }',
  'if ours "$1" "$2"; then',
  '  kill -TERM "$1" 2>/dev/null',
  '  i=0; while [ $i -lt 50 ] && ours "$1" "$2"; do sleep 0.1; i=$((i+1)); done',
  '  ours "$1" "$2" && kill -KILL "$1" 2>/dev/null',
  'fi',
  'case "$3" in */xporta-prosody-*) rm -rf -- "$3" ;; esac',
  'exit 0',
].join('\n');

function startWatchdog(pid: number, configPath: string, removeDir: string): ChildProcess {
  const dog = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'xporta-prosody-watchdog', String(pid), configPath, removeDir], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  dog.on('error', () => undefined);
  dog.stdin?.on('error', () => undefined);
  dog.unref();
  // The pipe's socket would otherwise keep the test process alive.
  (dog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return dog;
}

interface LaunchPorts {
  c2s: number;
  component: number;
  http?: number;
}

class ProsodyInstance implements ProsodyHandle {
  private child: ChildProcess | undefined;
  private watchdog: ChildProcess | undefined;
  private ports: LaunchPorts;
  private stopped = false;
  private readonly stdoutTail = new TailBuffer();
  private readonly stderrTail = new TailBuffer();

  constructor(
    readonly version: ProsodyVersion,
    readonly rootDir: string,
    private readonly ownsDir: boolean,
    readonly storage: ProsodyStorageKind,
    readonly sql: ProsodySqlParams | undefined,
    private readonly sqlKind: SqlServerKind | undefined,
    private readonly sqlServerParams: SqlServer | undefined,
    readonly passwordHash: 'SHA-1' | 'SHA-256',
    readonly hosts: readonly string[],
    readonly component: { readonly jid: string; readonly secret: string },
    private readonly privilege: PrivilegeConfig | undefined,
    private readonly logLevel: 'debug' | 'info',
    private readonly extraModules: readonly string[] | undefined,
    private readonly extraGlobalConfig: string | undefined,
    private readonly startTimeoutMs: number,
    ports: LaunchPorts,
  ) {
    this.ports = ports;
  }

  get dataDir(): string {
    return join(this.rootDir, 'data');
  }
  get configPath(): string {
    return join(this.rootDir, 'prosody.cfg.lua');
  }
  get logPath(): string {
    return join(this.rootDir, 'prosody.log');
  }
  private get pidFile(): string {
    return join(this.rootDir, 'prosody.pid');
  }
  get c2sPort(): number {
    return this.ports.c2s;
  }
  get componentPort(): number {
    return this.ports.component;
  }
  get httpPort(): number | undefined {
    return this.ports.http;
  }
  get service(): string {
    return `xmpp://127.0.0.1:${this.ports.c2s}`;
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  private async writeConfig(): Promise<void> {
    const text = renderProsodyConfig({
      dataDir: this.dataDir,
      pidFile: this.pidFile,
      logFile: this.logPath,
      certsDir: join(this.rootDir, 'certs'),
      logLevel: this.logLevel,
      c2sPort: this.ports.c2s,
      componentPort: this.ports.component,
      ...(this.ports.http !== undefined ? { httpPort: this.ports.http } : {}),
      version: this.version,
      hosts: this.hosts,
      component: this.component,
      storage: this.storage,
      ...(this.sql ? { sql: this.sql } : {}),
      passwordHash: this.passwordHash,
      ...(this.privilege ? { privilege: this.privilege } : {}),
      ...(this.extraModules ? { extraModules: this.extraModules } : {}),
      ...(this.extraGlobalConfig ? { extraGlobalConfig: this.extraGlobalConfig } : {}),
    });
    await writeFile(this.configPath, text, { mode: 0o600 });
  }

  private async pickNewPorts(): Promise<void> {
    const [c2s, component, http] = await freePorts(this.ports.http !== undefined ? 3 : 2);
    if (c2s === undefined || component === undefined) throw new Error('no free ports');
    this.ports = { c2s, component, ...(this.ports.http !== undefined && http !== undefined ? { http } : {}) };
  }

  /** Starts the process and waits until every configured port is served; retries on a port race. */
  async launch(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await this.writeConfig();
      const result = await this.launchOnce();
      if (result === 'ready') return;
      if (attempt >= START_ATTEMPTS) throw new Error(`Prosody could not bind its ports after ${attempt} attempts`);
      await this.pickNewPorts();
    }
  }

  private async launchOnce(): Promise<'ready' | 'port-taken'> {
    const logOffset = await fileSize(this.logPath);
    const child = spawn(prosodyBinaries(this.version).prosody, ['--config', this.configPath, '-F'], {
      cwd: this.rootDir,
      env: prosodyEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => this.stdoutTail.push(d));
    child.stderr?.on('data', (d: Buffer) => this.stderrTail.push(d));
    let spawnError: Error | undefined;
    child.on('error', (err) => {
      spawnError = err;
    });
    if (child.pid !== undefined) {
      this.watchdog = startWatchdog(child.pid, this.configPath, this.ownsDir && !keepData() ? this.rootDir : '');
    }
    live.add(this);

    const expected = [`'c2s' on [127.0.0.1]:${this.ports.c2s}`, `'component' on [127.0.0.1]:${this.ports.component}`];
    if (this.ports.http !== undefined) expected.push(`'http' on [127.0.0.1]:${this.ports.http}`);

    const deadline = Date.now() + this.startTimeoutMs;
    let log = '';
    for (;;) {
      if (spawnError) throw await this.startFailure(`could not spawn ${prosodyBinaries(this.version).prosody}: ${spawnError.message}`, log);
      if (!this.running) {
        throw await this.startFailure(`Prosody exited during startup (code ${child.exitCode}, signal ${child.signalCode})`, log);
      }
      log = await readFrom(this.logPath, logOffset);
      // Prosody logs a failed bind and keeps running; whoever holds the port would then answer us.
      if (log.includes('Failed to open server port')) {
        await this.terminate();
        return 'port-taken';
      }
      let ready = false;
      if (expected.every((s) => log.includes(`Activated service ${s}`))) {
        const probes = [this.ports.component, ...(this.ports.http !== undefined ? [this.ports.http] : [])];
        const reachable = await Promise.all(probes.map((p) => canConnect(p)));
        // The kernel accepts TCP as soon as a port is bound, which is before the VirtualHosts
        // have loaded their modules; stream features are only sent once the event loop runs,
        // i.e. after the whole startup, so errors logged during it are in the file by now.
        ready = reachable.every(Boolean) && (await c2sAnswersStream(this.ports.c2s, this.hosts[0] ?? 'localhost'));
        if (ready) log = await readFrom(this.logPath, logOffset);
      }
      // Errors at startup are misconfiguration (missing lua-dbi driver, unknown module, …), which
      // Prosody survives in a half-working state; fail loudly instead.
      const errorLine = log.split('\n').find((l) => /\terror\t/.test(l));
      if (errorLine !== undefined) throw await this.startFailure(`Prosody logged an error during startup: ${errorLine}`, log);
      if (ready) return 'ready';
      if (Date.now() > deadline) throw await this.startFailure(`Prosody did not open its ports within ${this.startTimeoutMs} ms`, log);
      await sleep(50);
    }
  }

  private async startFailure(reason: string, logSinceStart: string): Promise<Error> {
    await this.terminate();
    // 'exit' can come before the last stdout chunk (where Prosody prints config syntax errors).
    const child = this.child;
    if (child && !(child.stdout?.readableEnded ?? true)) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 300);
        child.once('close', () => {
          clearTimeout(timer);
          resolve(undefined);
        });
      });
    }
    const logText = logSinceStart.trim() === '' ? await this.logTail() : logSinceStart.split('\n').slice(-40).join('\n');
    const details = [
      `Prosody ${this.version}: ${reason}`,
      `config: ${this.configPath}${this.ownsDir && !keepData() ? ' (removed; XPORTA_KEEP_TEST_DATA=1 keeps it)' : ''}`,
      `--- log (${this.logPath}) ---`,
      logText,
      '--- stdout ---',
      this.stdoutTail.text(),
      '--- stderr ---',
      this.stderrTail.text(),
    ].join('\n');
    return new Error(details);
  }

  /** SIGTERM, SIGKILL after the grace period; resolves once the child has been reaped. */
  private async terminate(): Promise<void> {
    const child = this.child;
    if (child && this.running) {
      child.kill('SIGTERM');
      if (!(await waitForExit(child, STOP_GRACE_MS))) {
        child.kill('SIGKILL');
        await waitForExit(child, STOP_GRACE_MS);
      }
    }
    this.watchdog?.stdin?.end('stand down\n');
    this.watchdog = undefined;
  }

  killSync(): void {
    if (this.running && this.child?.pid !== undefined) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (this.ownsDir && !keepData()) rmSync(this.rootDir, { recursive: true, force: true });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await this.terminate();
    } finally {
      live.delete(this);
      await this.cleanup();
    }
  }

  /** Drops our database and removes our directory; shared by stop() and a failed start. */
  async cleanup(): Promise<void> {
    const errors: unknown[] = [];
    if (this.sqlKind && this.sql && !keepData()) {
      try {
        await dropTestDatabase(this.sqlKind, this.sql.database, this.sqlServerParams);
      } catch (err) {
        errors.push(err);
      }
    }
    if (keepData()) {
      console.warn(`[xporta tests] XPORTA_KEEP_TEST_DATA=1: kept ${this.rootDir}${this.sql && this.sqlKind ? ` and database ${this.sql.database}` : ''}`);
    } else if (this.ownsDir) {
      await rm(this.rootDir, { recursive: true, force: true });
    }
    if (errors.length > 0) throw new AggregateError(errors, 'Prosody cleanup failed');
  }

  async restart(): Promise<void> {
    if (this.stopped) throw new Error('restart() after stop()');
    await this.terminate();
    await this.launch();
  }

  prosodyctl(args: readonly string[]): Promise<ProsodyctlResult> {
    return runProsodyctl(prosodyBinaries(this.version).prosodyctl, this.configPath, this.rootDir, args);
  }

  async logTail(lines = 40): Promise<string> {
    return (await readFrom(this.logPath, 0)).split('\n').slice(-lines - 1).join('\n');
  }
}

/** Opens a c2s stream and resolves true once <stream:features> arrive. */
function c2sAnswersStream(port: number, domain: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let received = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('error', () => done(false));
    socket.once('connect', () => {
      socket.write(
        `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}' version='1.0'>`,
      );
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8');
      if (received.includes('</stream:features>') || received.includes('<stream:features/>')) done(true);
      else if (received.includes('</stream:stream>')) done(false);
    });
  });
}

function runProsodyctl(bin: string, configPath: string, cwd: string, args: readonly string[]): Promise<ProsodyctlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['--config', configPath, ...args], {
      cwd,
      env: prosodyEnv(),
      // prosodyctl may prompt (passwords, confirmations); a closed stdin makes it give up.
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export async function startProsody(options: StartProsodyOptions = {}): Promise<ProsodyHandle> {
  const version = options.version ?? defaultProsodyVersion();
  const bins = prosodyBinaries(version);
  for (const bin of [bins.prosody, bins.prosodyctl]) {
    if (!requireBinary(bin, version)) throw new Error(`Prosody ${version}: ${bin} is missing; wrap the suite in describeWithProsody() to skip`);
  }
  const storage = options.storage ?? 'sqlite';
  const hosts = options.hosts ?? ['localhost'];
  if (hosts.length === 0) throw new Error('at least one VirtualHost is needed');
  const component = {
    jid: options.component?.jid ?? 'xporta.localhost',
    secret: options.component?.secret ?? randomBytes(12).toString('hex'),
  };
  const privilege = options.privilege === true ? DEFAULT_PRIVILEGE : options.privilege || undefined;

  let rootDir: string;
  let ownsDir: boolean;
  if (options.dir !== undefined) {
    rootDir = options.dir;
    ownsDir = false;
    mkdirSync(rootDir, { recursive: true });
  } else {
    rootDir = await mkdtemp(join(tmpdir(), 'xporta-prosody-'));
    ownsDir = true;
  }
  mkdirSync(join(rootDir, 'data'), { recursive: true, mode: 0o750 });
  mkdirSync(join(rootDir, 'certs'), { recursive: true });

  let sql: ProsodySqlParams | undefined;
  let sqlKind: SqlServerKind | undefined;
  let server: SqlServer | undefined;
  try {
    if (storage === 'sqlite') {
      sql = { driver: 'SQLite3', database: join(rootDir, 'data', 'prosody.sqlite') };
    } else if (storage === 'postgres' || storage === 'mysql') {
      sqlKind = storage;
      server = options.sqlServer ?? sqlServer(storage);
      const database = await createTestDatabase(storage, server);
      sql = {
        driver: storage === 'postgres' ? 'PostgreSQL' : 'MySQL',
        database,
        host: server.host,
        port: server.port,
        username: server.username,
        password: server.password,
      };
    }
  } catch (err) {
    if (ownsDir) await rm(rootDir, { recursive: true, force: true });
    throw err;
  }

  const [c2s, componentPort, http] = await freePorts(options.http ? 3 : 2);
  if (c2s === undefined || componentPort === undefined) throw new Error('no free ports');
  installExitHook();
  const instance = new ProsodyInstance(
    version,
    rootDir,
    ownsDir,
    storage,
    sql,
    sqlKind,
    server,
    options.passwordHash ?? 'SHA-1',
    hosts,
    component,
    privilege,
    options.logLevel ?? 'info',
    options.extraModules,
    options.extraGlobalConfig,
    options.startTimeoutMs ?? 20_000,
    { c2s, component: componentPort, ...(options.http && http !== undefined ? { http } : {}) },
  );
  try {
    await instance.launch();
  } catch (err) {
    await instance.stop().catch(() => undefined);
    throw err;
  }
  return instance;
}

/**
 * Registers (or, as prosodyctl does silently, re-passwords) an account. Works against storage
 * directly, so it needs no running server, and a running one sees the account at once.
 */
export async function createUser(prosody: ProsodyHandle, user: string, host: string, password: string): Promise<void> {
  let result = await prosody.prosodyctl(['register', user, host, password]);
  // prosodyctl writes SQLite beside the running server, which may hold the write lock a moment
  // (13 writes its cron store at start): try again rather than fail on a busy database.
  for (let attempt = 1; attempt < 5 && result.code !== 0 && /database is locked/.test(result.stdout + result.stderr); attempt++) {
    await sleep(250 * attempt);
    result = await prosody.prosodyctl(['register', user, host, password]);
  }
  if (result.code !== 0) {
    throw new Error(`prosodyctl register ${user} ${host} failed (${result.code}): ${result.stdout}${result.stderr}`);
  }
}

/** Deletes the account and purges every store it had (usermanager.delete_user → storagemanager.purge). */
export async function deleteUser(prosody: ProsodyHandle, user: string, host: string): Promise<void> {
  const result = await prosody.prosodyctl(['deluser', `${user}@${host}`]);
  if (result.code !== 0) {
    throw new Error(`prosodyctl deluser ${user}@${host} failed (${result.code}): ${result.stdout}${result.stderr}`);
  }
}
