/**
 * Drives Prosody's own `prosody-migrator` between SQL (SQLite) storage and its XEP-0227 driver
 * (mod_storage_xep0227): the reference output xporta's reader is checked against, and the
 * baseline the benchmark compares xporta with.
 *
 * The migrator never reads a Prosody config, so `prosody.paths.data`, which is where the
 * XEP-0227 driver reads and writes `<user>@<host>.xml`, is the compiled-in
 * `CFG_DATADIR = '/var/lib/prosody'`. We run the unchanged binary with a Lua preamble
 * (`LUA_INIT_5_4=@file`) that replaces the first assignment of that global with our directory,
 * and that refuses any write below /var/lib/prosody in case a future script assigns it
 * differently and the swap silently misses.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { luaString } from './lua-string.js';

export const PROSODY_MIGRATOR_BIN = process.env.XPORTA_PROSODY_MIGRATOR_BIN ?? '/usr/bin/prosody-migrator';

/** The migrator's compiled-in data dir: never written by these helpers. */
export const PROSODY_SYSTEM_DATA_DIR = '/var/lib/prosody';

/**
 * The stores mod_storage_xep0227 (0.12) has handlers for. `pep` covers the node records and,
 * through the migrator's `pubsub` store type, every `pep_<node>` item archive.
 */
export const XEP0227_STORES = ['accounts', 'roster', 'vcard', 'private', 'pep', 'archive'] as const;
export type Xep0227Store = (typeof XEP0227_STORES)[number];

/**
 * Stores a Prosody 0.12 server with the rig's modules writes that the XEP-0227 driver has no
 * handler for. Naming one makes the migrator abort with `unsupported-datastore`, even with
 * `--keep-going`: the store is opened by a bare assert outside the per-user error handling.
 */
export const XEP0227_UNSUPPORTED_STORES: readonly string[] = [
  'account_details',
  'archive_prefs',
  'blocklist',
  'offline',
  'privacy',
  'roles',
  'smacks_h',
];

/** `store[-type]` as the migrator's `hosts` lists want it; the type defaults to keyval. */
const STORE_SPEC: Readonly<Record<Xep0227Store, string>> = {
  accounts: 'accounts',
  roster: 'roster',
  vcard: 'vcard',
  private: 'private',
  pep: 'pep-pubsub',
  archive: 'archive-archive',
};

const DEFAULT_TIMEOUT_MS = 120_000;
const OUTPUT_LIMIT = 256 * 1024;
const DATADIR_MARKER = 'xporta-migrator-datadir:';

interface CommonOptions {
  /** The SQLite file Prosody used (`sql.database`); it should be quiescent (Prosody stopped). */
  readonly sqliteDatabase: string;
  /** VirtualHost(s) to migrate. Default `localhost`. */
  readonly host?: string | readonly string[];
  /**
   * Stores to migrate, in any order: `accounts` always runs first, since the XEP-0227 handlers
   * for the other stores silently skip a user whose file does not exist yet. Default: all of
   * {@link XEP0227_STORES}.
   */
  readonly stores?: readonly Xep0227Store[];
  /**
   * Raw `store[-type]` entries appended after `stores` (e.g. `blocklist`, `offline-archive`),
   * to observe what the migrator does with stores it cannot handle (it aborts, see
   * {@link XEP0227_UNSUPPORTED_STORES}).
   */
  readonly extraStores?: readonly string[];
  /** `--keep-going`: log a failing store/user at error level and continue. */
  readonly keepGoing?: boolean;
  /** `-v`: debug logging (one line per file read/written; slows large runs). */
  readonly verbose?: boolean;
  /** Kill the migrator after this long. Default 120 s. */
  readonly timeoutMs?: number;
}

export interface MigratorExportOptions extends CommonOptions {
  /** Where the `<user>@<host>.xml` files go; created if missing. */
  readonly outputDir: string;
}

export interface MigratorImportOptions extends CommonOptions {
  /** A directory of `<user>@<host>.xml` files as {@link runProsodyMigrator} writes them. */
  readonly inputDir: string;
}

export interface MigratorRun {
  /** What was executed, for reports and for repeating it by hand. */
  readonly command: {
    readonly file: string;
    readonly args: readonly string[];
    /** Only the variables set on top of the inherited environment. */
    readonly env: Readonly<Record<string, string>>;
  };
  /** The migrator config (Lua) that was passed with `--config`. */
  readonly configText: string;
  /** The preamble loaded through LUA_INIT_5_4. */
  readonly preludeText: string;
  /** Wall-clock time of the migrator process, spawn to exit. */
  readonly durationMs: number;
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Lines the migrator logged at error level (what `--keep-going` skipped over). */
  readonly errors: readonly string[];
}

export interface MigratedUserFile {
  readonly jid: string;
  readonly user: string;
  readonly host: string;
  readonly path: string;
  readonly bytes: number;
}

export interface MigratorExportResult extends MigratorRun {
  readonly outputDir: string;
  /** One per user, sorted by JID. */
  readonly files: readonly MigratedUserFile[];
}

export interface MigratorImportResult extends MigratorRun {
  readonly sqliteDatabase: string;
}

export class ProsodyMigratorError extends Error {
  constructor(
    message: string,
    readonly run: Omit<MigratorRun, 'errors'>,
  ) {
    super(message);
    this.name = 'ProsodyMigratorError';
  }
}

// ---------------------------------------------------------------------------------------------

function hostsOf(host: CommonOptions['host']): string[] {
  const hosts = host === undefined ? ['localhost'] : typeof host === 'string' ? [host] : [...host];
  if (hosts.length === 0) throw new Error('prosody-migrator: at least one host is needed');
  for (const h of hosts) {
    if (h === '' || /[\s@/]/.test(h)) throw new Error(`prosody-migrator: not a domain: ${JSON.stringify(h)}`);
  }
  return hosts;
}

function storeSpecs(options: CommonOptions): string[] {
  const stores = options.stores ?? XEP0227_STORES;
  for (const s of stores) {
    if (!Object.hasOwn(STORE_SPEC, s)) throw new Error(`prosody-migrator: unknown store ${JSON.stringify(s)}`);
  }
  const ordered = [...new Set(stores)].sort((a, b) => Number(b === 'accounts') - Number(a === 'accounts'));
  return [...ordered.map((s) => STORE_SPEC[s]), ...(options.extraStores ?? [])];
}

function underSystemDataDir(path: string): boolean {
  const abs = resolve(path);
  return abs === PROSODY_SYSTEM_DATA_DIR || abs.startsWith(`${PROSODY_SYSTEM_DATA_DIR}/`);
}

function checkPath(label: string, path: string): string {
  if (!isAbsolute(path)) throw new Error(`prosody-migrator: ${label} must be absolute: ${path}`);
  if (underSystemDataDir(path)) throw new Error(`prosody-migrator: refusing to use ${path} (the system Prosody's data dir)`);
  return resolve(path);
}

/**
 * Runs before the migrator script. The metatable sees each new global as it is first assigned;
 * `CFG_DATADIR` is the fourth, and after swapping it the metatable is removed so nothing else
 * in Prosody runs with it. The io/os wrappers are a backstop, not the mechanism.
 */
function renderPrelude(dataDir: string): string {
  return [
    '-- Written by xporta bench/prosody-migrator.ts; loaded through LUA_INIT_5_4.',
    `local data_dir = ${luaString(dataDir)}`,
    `local forbidden = ${luaString(PROSODY_SYSTEM_DATA_DIR)}`,
    'setmetatable(_G, { __newindex = function (t, k, v)',
    '  if k == "CFG_DATADIR" then',
    '    rawset(t, k, data_dir)',
    '    setmetatable(t, nil)',
    `    io.stderr:write(${luaString(DATADIR_MARKER)}, " ", data_dir, "\\n")`,
    '  else',
    '    rawset(t, k, v)',
    '  end',
    'end })',
    'local function check(path)',
    '  if type(path) == "string" and (path == forbidden or path:sub(1, #forbidden + 1) == forbidden .. "/") then',
    '    error("xporta: refusing to write below " .. forbidden .. ": " .. path, 3)',
    '  end',
    'end',
    'local io_open, os_remove, os_rename = io.open, os.remove, os.rename',
    'io.open = function (path, mode, ...)',
    '  if mode ~= nil and mode ~= "r" and mode ~= "rb" then check(path) end',
    '  return io_open(path, mode, ...)',
    'end',
    'os.remove = function (path) check(path); return os_remove(path) end',
    'os.rename = function (a, b) check(a); check(b); return os_rename(a, b) end',
    '',
  ].join('\n');
}

function renderConfig(hosts: readonly string[], stores: readonly string[], input: string, output: string): string {
  const hostTable = hosts.map((h) => `[${luaString(h)}] = { ${stores.map(luaString).join(', ')} }`).join('; ');
  return [
    '-- Written by xporta bench/prosody-migrator.ts.',
    `input {\n${input}\n  hosts = { ${hostTable} };\n}`,
    `output {\n${output}\n}`,
    '',
  ].join('\n');
}

function sqlStore(database: string): string {
  return [`  type = "sql";`, `  driver = "SQLite3";`, `  database = ${luaString(database)};`].join('\n');
}

function xep0227Store(dir: string): string {
  // mod_storage_xep0227 ignores `path` (it uses prosody.paths.data); kept so the file says what we meant.
  return [`  type = "xep0227";`, `  path = ${luaString(dir)};`].join('\n');
}

/** The inherited environment minus anything that would preload other Lua or change log levels. */
function migratorEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('LUA_INIT') || key === 'PROSODY_CONFIG' || key === 'PROSODYCTL_LOG_LEVEL') delete env[key];
  }
  return { ...env, ...extra };
}

class Capped {
  private text = '';
  private dropped = 0;
  push(chunk: Buffer): void {
    this.text += chunk.toString('utf8');
    if (this.text.length > OUTPUT_LIMIT) {
      this.dropped += this.text.length - OUTPUT_LIMIT;
      this.text = this.text.slice(-OUTPUT_LIMIT);
    }
  }
  value(): string {
    return this.dropped > 0 ? `[… ${this.dropped} characters dropped]\n${this.text}` : this.text;
  }
}

interface RunSpec {
  readonly dataDir: string;
  readonly hosts: readonly string[];
  readonly stores: readonly string[];
  readonly input: string;
  readonly output: string;
  readonly options: CommonOptions;
}

function tail(text: string, lines = 40): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

async function runMigrator(spec: RunSpec): Promise<MigratorRun> {
  const workDir = await mkdtemp(join(tmpdir(), 'xporta-migrator-'));
  try {
    const preludeText = renderPrelude(spec.dataDir);
    const configText = renderConfig(spec.hosts, spec.stores, spec.input, spec.output);
    const preludePath = join(workDir, 'migrator-datadir.lua');
    const configPath = join(workDir, 'migrator.cfg.lua');
    await writeFile(preludePath, preludeText);
    await writeFile(configPath, configText, { mode: 0o600 });

    // --root: as root the migrator would otherwise setuid to `prosody`, which cannot read our temp dirs.
    const args = ['--root', ...(spec.options.keepGoing ? ['--keep-going'] : []), ...(spec.options.verbose ? ['-v'] : []), '--config', configPath, 'input', 'output'];
    const extraEnv = { LUA_INIT_5_4: `@${preludePath}` };
    const stdout = new Capped();
    const stderr = new Capped();
    const timeoutMs = spec.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const started = performance.now();
    const { code, signal, timedOut } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }>(
      (resolvePromise, reject) => {
        const child = spawn(PROSODY_MIGRATOR_BIN, args, { cwd: workDir, env: migratorEnv(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
        let killed = false;
        const timer = setTimeout(() => {
          killed = true;
          child.kill('SIGKILL');
        }, timeoutMs);
        child.stdout.on('data', (d: Buffer) => stdout.push(d));
        child.stderr.on('data', (d: Buffer) => stderr.push(d));
        child.on('error', (err) => {
          clearTimeout(timer);
          reject(new Error(`could not run ${PROSODY_MIGRATOR_BIN}: ${err.message}`, { cause: err }));
        });
        child.on('close', (c, s) => {
          clearTimeout(timer);
          resolvePromise({ code: c, signal: s, timedOut: killed });
        });
      },
    );
    const durationMs = performance.now() - started;
    const run = {
      command: { file: PROSODY_MIGRATOR_BIN, args, env: extraEnv },
      configText,
      preludeText,
      durationMs,
      exitCode: code,
      stdout: stdout.value(),
      stderr: stderr.value(),
    };
    const output = `--- stdout ---\n${tail(run.stdout)}\n--- stderr ---\n${tail(run.stderr)}`;
    if (timedOut) throw new ProsodyMigratorError(`prosody-migrator did not finish within ${timeoutMs} ms\n${output}`, run);
    if (!run.stderr.includes(`${DATADIR_MARKER} ${spec.dataDir}`)) {
      throw new ProsodyMigratorError(
        `prosody-migrator did not assign CFG_DATADIR as expected, so the data dir could not be redirected\n${output}`,
        run,
      );
    }
    if (code !== 0 || signal !== null) {
      throw new ProsodyMigratorError(`prosody-migrator failed (exit ${code ?? signal})\n--- config ---\n${configText}${output}`, run);
    }
    // Console log lines are "<source><spaces><level>\t<message>" (loggingmanager's stdout sink);
    // with --keep-going, failures only show up here.
    const errors = `${run.stdout}\n${run.stderr}`.split('\n').filter((l) => /^\S+ {2,}error\t/.test(l));
    return { ...run, errors };
  } finally {
    if (process.env.XPORTA_KEEP_TEST_DATA !== '1') await rm(workDir, { recursive: true, force: true });
  }
}

async function listUserFiles(dir: string, hosts: readonly string[]): Promise<MigratedUserFile[]> {
  const files: MigratedUserFile[] = [];
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.xml')) continue;
    const jid = name.slice(0, -'.xml'.length);
    const at = jid.lastIndexOf('@');
    if (at <= 0) continue;
    const host = jid.slice(at + 1);
    if (!hosts.includes(host)) continue;
    const path = join(dir, name);
    files.push({ jid, user: jid.slice(0, at), host, path, bytes: (await stat(path)).size });
  }
  return files.sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0));
}

async function requireFile(path: string, what: string): Promise<void> {
  try {
    if (!(await stat(path)).isFile()) throw new Error('not a file');
  } catch {
    throw new Error(`prosody-migrator: ${what} ${path} does not exist`);
  }
}

/**
 * Prosody's own export: SQL (SQLite) storage → XEP-0227, one `<user>@<host>.xml` per account
 * in `outputDir`. Files already there are rewritten by the `accounts` step, except those of
 * users the database no longer has.
 */
export async function runProsodyMigrator(options: MigratorExportOptions): Promise<MigratorExportResult> {
  const sqliteDatabase = checkPath('sqliteDatabase', options.sqliteDatabase);
  const outputDir = checkPath('outputDir', options.outputDir);
  await requireFile(sqliteDatabase, 'SQLite database');
  await mkdir(outputDir, { recursive: true });
  const hosts = hostsOf(options.host);
  const run = await runMigrator({
    dataDir: outputDir,
    hosts,
    stores: storeSpecs(options),
    input: sqlStore(sqliteDatabase),
    output: xep0227Store(outputDir),
    options,
  });
  return { ...run, outputDir, files: await listUserFiles(outputDir, hosts) };
}

/**
 * Prosody's own import: XEP-0227 files in `inputDir` → SQL (SQLite), creating the tables if
 * needed. In 0.12 this only completes with `keepGoing` (the default here): the host-level pass
 * of the archive store and PEP nodes without items fail an assert; see `errors` for what was skipped.
 */
export async function runProsodyMigratorImport(options: MigratorImportOptions): Promise<MigratorImportResult> {
  const inputDir = checkPath('inputDir', options.inputDir);
  const sqliteDatabase = checkPath('sqliteDatabase', options.sqliteDatabase);
  if (!(await stat(inputDir).catch(() => undefined))?.isDirectory()) {
    throw new Error(`prosody-migrator: input directory ${inputDir} does not exist`);
  }
  const run = await runMigrator({
    dataDir: inputDir,
    hosts: hostsOf(options.host),
    stores: storeSpecs(options),
    input: xep0227Store(inputDir),
    output: sqlStore(sqliteDatabase),
    options: { ...options, keepGoing: options.keepGoing ?? true },
  });
  return { ...run, sqliteDatabase };
}
