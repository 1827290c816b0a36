/**
 * `npm run bench [-- --sizes 10000,100000,1000000] [--full] [--cap SECONDS] [--no-migrator] [--no-write]
 *   [--only export,http,concurrent,postgres,mysql,files,ejabberd,migrator,pull] [--concurrent N] [--export-workers N] [--hosts 10000,100000]`
 *
 * `--hosts`: host transfers of that many small accounts too (bench/host.ts); with `--hosts` and
 * no `--sizes`, only those, written as the "Host transfers" section of the existing results.md.
 *
 * `--only pull`: the SQLite import, then that store served by Prosody 0.12 and pulled over the
 * client protocol (bench/pull.ts), written as the "Pull over the client protocol" section of the
 * existing results.md; the table of the other steps is left as it is.
 *
 * For each archive size, with a fresh process for every measured step: import into an empty
 * SQLite, PostgreSQL, MariaDB and internal-files store (CLI), export from SQLite via the CLI and via
 * HTTP, import into and export from ejabberd's SQLite schema, and, on
 * the same data, Prosody's own prosody-migrator SQLite → xep0227 and back, capped in time. The
 * migrator's import always runs: on its own export when that finished within the cap, otherwise
 * on the document xporta exported from the same SQLite store in the same run.
 * Next to the steps, in the same run and on the same rows, the ceilings that bound them
 * (bench/ceilings.ts): each step gets its ceiling's time and the ratio ceiling / step. N
 * concurrent HTTP exports of the account from one service give the aggregate throughput and the
 * service's peak RSS (`--export-workers`: the service's `exports.workers`, 0 for exports on its
 * own thread; its default otherwise). `--only` keeps the listed groups (the SQLite import, which every other step
 * reads, and its ceiling always run).
 * Prints a Markdown table with versions and the machine, and writes it to bench/results.md
 * (unless `--no-write`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { writeDocument } from '../src/xep0227/writer.js';
import type * as MigratorModule from './prosody-migrator.js';
import { ejabberdScanCeiling, mysqlLoadDataCeiling, plainFilesCeiling, postgresCopyCeiling, sqliteInsertCeiling, sqliteScanCeiling, type CeilingRun } from './ceilings.js';
import { checkpointPostgres, createTestDatabase, dropTestDatabase, sqlServer } from './sql-databases.js';
import { rawGet } from './raw-get.js';
import { BENCH_HOST, BENCH_USER, syntheticAccount } from './synthetic.js';
import { runHostBench, withHostSection } from './host.js';
import { runPullBench, withPullSection } from './pull.js';

const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist', 'cli.js');
/** The V8 flags xporta runs with: those of its launcher line (`#!/usr/bin/env -S node …`). */
const nodeFlags = ((existsSync(cli) ? readFileSync(cli, 'utf8') : '').split('\n', 1)[0]?.match(/^#!.*\bnode\b(.*)$/)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
const xporta = [process.execPath, ...nodeFlags, cli];
const JID = `${BENCH_USER}@${BENCH_HOST}`;
const TOKEN = 'bench-operator-token';

interface Measured {
  readonly seconds: number;
  readonly peakRssMb: number;
  readonly ok: boolean;
  readonly detail?: string;
}

interface Row {
  readonly size: number;
  readonly step: string;
  readonly result: Measured | { readonly capped: number } | { readonly failed: string };
  readonly bytes?: number;
  readonly note?: string;
  /** Messages moved when not `size` (concurrent exports): what the throughput counts. */
  readonly messages?: number;
  /** The step of the ceiling row that bounds this one. */
  readonly ceiling?: string;
}

const { values } = parseArgs({
  options: {
    sizes: { type: 'string' },
    full: { type: 'boolean' },
    cap: { type: 'string' },
    'no-migrator': { type: 'boolean' },
    'no-write': { type: 'boolean' },
    hosts: { type: 'string' },
    only: { type: 'string' },
    concurrent: { type: 'string' },
    'export-workers': { type: 'string' },
  },
});
const sizes = values.sizes ? values.sizes.split(',').map(Number) : values.full ? [10_000, 100_000, 1_000_000] : [10_000];
const capSeconds = Number(values.cap ?? 300);
const GROUPS = ['export', 'http', 'concurrent', 'postgres', 'mysql', 'files', 'ejabberd', 'migrator', 'pull'] as const;
type Group = (typeof GROUPS)[number];
const only = values.only?.split(',').map((g) => g.trim());
const unknownGroup = only?.find((g) => !(GROUPS as readonly string[]).includes(g));
if (unknownGroup !== undefined) throw new Error(`--only: unknown group ${unknownGroup} (one of ${GROUPS.join(', ')})`);
const runs = (group: Group): boolean => !only || only.includes(group);
const concurrency = Number(values.concurrent ?? 4);
if (!Number.isInteger(concurrency) || concurrency < 2) throw new Error('--concurrent: an integer ≥ 2');

/**
 * Writes out what the last step left dirty (a generated document, a database of hundreds of MB)
 * before the next is timed: the kernel's writeback would otherwise share its two cores and disk.
 */
function settle(): void {
  spawnSync('sync', [], { stdio: 'ignore' });
}

/** Runs a command under GNU time: wall seconds and peak RSS of that process alone. */
function timed(command: string[], env: NodeJS.ProcessEnv, stdoutFile?: string, stdin?: string): Measured {
  settle();
  const timeFile = join(tmpdir(), `xporta-bench-time-${process.pid}`);
  // Files, not pipes: the measured process writes and reads at disk speed, not through this one.
  const out = stdoutFile ? openSync(stdoutFile, 'w') : undefined;
  const input = stdin ? openSync(stdin, 'r') : undefined;
  try {
    const run = spawnSync('/usr/bin/time', ['-f', '%e %M', '-o', timeFile, ...command], {
      env: { PATH: process.env.PATH, ...env },
      stdio: [input ?? 'ignore', out ?? 'ignore', 'pipe'],
      maxBuffer: 64 * 1024 ** 2,
    });
    const [seconds = 'NaN', kb = 'NaN'] = readFileSync(timeFile, 'utf8').trim().split(/\s+/).slice(-2);
    rmSync(timeFile, { force: true });
    return { seconds: Number(seconds), peakRssMb: Number(kb) / 1024, ok: run.status === 0, ...(run.status !== 0 ? { detail: String(run.stderr).slice(-500) } : {}) };
  } finally {
    if (out !== undefined) closeSync(out);
    if (input !== undefined) closeSync(input);
  }
}

async function generate(size: number, file: string): Promise<void> {
  await pipeline(Readable.from(writeDocument(syntheticAccount(size))), createWriteStream(file));
}

function sqliteEnv(dir: string): NodeJS.ProcessEnv {
  return { XPORTA_DATA_DIR: dir, XPORTA_LOG_LEVEL: 'warn' };
}

type Target = 'sqlite' | 'postgres' | 'mysql' | 'files' | 'ejabberd';

const TARGET_NAMES: Record<Target, string> = {
  sqlite: 'SQLite',
  postgres: 'PostgreSQL',
  mysql: 'MariaDB',
  files: 'Prosody internal files',
  ejabberd: 'ejabberd (SQLite)',
};

/** ejabberd's own schema file: what ejabberd 23.01 runs on an empty SQLite database (`new_sql_schema: true`). */
const EJABBERD_SCHEMA = '/usr/share/ejabberd/sql/lite.new.sql';

function ejabberdEnv(work: string): NodeJS.ProcessEnv {
  return {
    XPORTA_DATA_DIR: join(work, 'ejabberd-state'),
    XPORTA_LOG_LEVEL: 'warn',
    XPORTA_STORAGE: JSON.stringify({ type: 'ejabberd-sql', driver: 'sqlite', schema: 'new', database: join(work, 'ejabberd.sqlite') }),
  };
}

async function importInto(kind: Target, doc: string, work: string): Promise<Measured> {
  if (kind === 'sqlite') {
    return timed([...xporta, 'import', JID, doc, '--create-account'], sqliteEnv(join(work, 'sqlite')));
  }
  if (kind === 'ejabberd') {
    const db = new Database(join(work, 'ejabberd.sqlite'));
    db.exec(readFileSync(EJABBERD_SCHEMA, 'utf8'));
    db.close();
    return timed([...xporta, 'import', JID, doc, '--create-account'], ejabberdEnv(work));
  }
  if (kind === 'files') {
    return timed([...xporta, 'import', JID, doc, '--create-account'], {
      XPORTA_DATA_DIR: join(work, 'files-state'),
      XPORTA_LOG_LEVEL: 'warn',
      XPORTA_STORAGE: JSON.stringify({ type: 'prosody-files', path: join(work, 'files') }),
    });
  }
  const server = sqlServer(kind);
  const database = await createTestDatabase(kind, server);
  // As before the COPY ceiling: both start a checkpoint cycle afresh.
  if (kind === 'postgres') await checkpointPostgres(server);
  try {
    const storage = { type: 'prosody-sql', driver: kind, host: server.host, port: server.port, database, username: server.username, ...(server.password ? { password: server.password } : {}) };
    return timed([...xporta, 'import', JID, doc, '--create-account'], {
      XPORTA_DATA_DIR: join(work, kind),
      XPORTA_LOG_LEVEL: 'warn',
      XPORTA_STORAGE: JSON.stringify(storage),
    });
  } finally {
    await dropTestDatabase(kind, database, server);
  }
}

/**
 * The service in its own process (under GNU time for its peak RSS), the client here: `count`
 * exports of the account at once, timed from the first request to the last byte of the last.
 */
/** The service's CPU seconds (user + system, its start included) come as `cpuSeconds`. */
async function exportOverHttp(work: string, count = 1): Promise<Measured & { bytes: number; cpuSeconds: number }> {
  const port = 18_000 + Math.floor(Math.random() * 2000);
  const timeFile = join(work, 'serve.time');
  settle();
  const service = spawn('/usr/bin/time', ['-f', '%e %M %U %S', '-o', timeFile, ...xporta, 'serve'], {
    env: {
      PATH: process.env.PATH,
      ...sqliteEnv(join(work, 'sqlite')),
      XPORTA_LISTEN__PORT: String(port),
      XPORTA_OPERATOR_TOKEN: TOKEN,
      ...(values['export-workers'] !== undefined ? { XPORTA_EXPORTS__WORKERS: values['export-workers'] } : {}),
    },
    stdio: 'ignore',
  });
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const started = performance.now();
  const one = async (): Promise<{ ok: boolean; bytes: number; detail?: string }> => {
    try {
      // A plain socket that counts the body: an HTTP library's per-chunk work here would take
      // the two cores from the service it measures (4 exports are 2 GB to read).
      const res = await rawGet(port, `/v1/users/${encodeURIComponent(JID)}/export`, { authorization: `Bearer ${TOKEN}` });
      if (res.status !== 200) return { ok: false, bytes: 0, detail: `HTTP ${res.status}: ${(res.text ?? '').slice(0, 200)}` };
      return { ok: true, bytes: res.bytes };
    } catch (err) {
      return { ok: false, bytes: 0, detail: err instanceof Error ? err.message : String(err) };
    }
  };
  const done = await Promise.all(Array.from({ length: count }, one));
  const seconds = (performance.now() - started) / 1000;
  const exited = new Promise((r) => service.on('exit', r));
  // GNU time forwards nothing, so signal the node child itself.
  spawnSync('pkill', ['-TERM', '-P', String(service.pid)]);
  await exited;
  const [kb, user, system] = readFileSync(timeFile, 'utf8').trim().split(/\s+/).slice(-3).map(Number) as [number, number, number];
  const detail = done.find((d) => d.detail !== undefined)?.detail;
  return {
    seconds,
    peakRssMb: kb / 1024,
    cpuSeconds: user + system,
    ok: done.every((d) => d.ok),
    bytes: done.reduce((sum, d) => sum + d.bytes, 0),
    ...(detail !== undefined ? { detail } : {}),
  };
}

/**
 * prosody-migrator under GNU time, for its peak RSS. The helper in bench/prosody-migrator.ts spawns
 * `PROSODY_MIGRATOR_BIN`, read from XPORTA_PROSODY_MIGRATOR_BIN when it is loaded; we point that
 * at a wrapper script and load the helper afterwards. The wrapper enforces the cap itself with
 * timeout(1): the helper's own timeout would SIGKILL only GNU time and orphan the migrator, so it
 * is set later than the cap as a backstop. Each run's time file comes through the environment.
 */
interface Migrator {
  readonly api: typeof MigratorModule;
  /** Where GNU time writes; undefined when the helper was already loaded and does not use the wrapper. */
  readonly timeFileEnv?: string;
  readonly timeoutMs: number;
}

const TIME_FILE_ENV = 'XPORTA_BENCH_MIGRATOR_TIME_FILE';

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

async function loadMigrator(dir: string): Promise<Migrator> {
  const real = process.env.XPORTA_PROSODY_MIGRATOR_BIN ?? '/usr/bin/prosody-migrator';
  const wrapper = join(dir, 'prosody-migrator-timed');
  writeFileSync(
    wrapper,
    [
      '#!/bin/sh',
      '# Written by xporta bench/run.ts: prosody-migrator under GNU time, stopped by timeout(1) at the cap.',
      `exec /usr/bin/time -f '%e %M' -o "$${TIME_FILE_ENV}" /usr/bin/timeout -k 5 ${capSeconds} ${shellQuote(real)} "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(wrapper, 0o755);
  process.env.XPORTA_PROSODY_MIGRATOR_BIN = wrapper;
  const api = await import('./prosody-migrator.js');
  if (api.PROSODY_MIGRATOR_BIN !== wrapper) return { api, timeoutMs: capSeconds * 1000 };
  return { api, timeFileEnv: TIME_FILE_ENV, timeoutMs: capSeconds * 1000 + 30_000 };
}

interface MigratorStep {
  readonly result: Row['result'];
  readonly errors?: readonly string[];
}

async function migratorStep(m: Migrator, timeFile: string, run: () => Promise<MigratorModule.MigratorRun>): Promise<MigratorStep> {
  if (m.timeFileEnv) process.env[m.timeFileEnv] = timeFile;
  const rss = (): number => {
    if (!existsSync(timeFile)) return NaN;
    return Number(readFileSync(timeFile, 'utf8').trim().split(/\s+/).pop()) / 1024;
  };
  settle();
  try {
    const done = await run();
    return { result: { seconds: done.durationMs / 1000, peakRssMb: rss(), ok: true }, errors: done.errors };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const ms = err instanceof m.api.ProsodyMigratorError ? err.run.durationMs : 0;
    // Our timeout(1) exits 124 (137 if it had to follow up with SIGKILL); the helper's own cap says "did not finish".
    const capped = /did not finish|\(exit (124|137)\)/.test(message) || ms >= capSeconds * 1000;
    return { result: capped ? { capped: capSeconds } : { failed: message.split('\n')[0] ?? '' } };
  } finally {
    if (m.timeFileEnv) delete process.env[m.timeFileEnv];
    rmSync(timeFile, { force: true });
  }
}

function archiveRows(sqlite: string): number | undefined {
  if (!existsSync(sqlite)) return undefined;
  const db = new Database(sqlite, { readonly: true });
  try {
    return (db.prepare("select count(*) as n from prosodyarchive where store = 'archive'").get() as { n: number }).n;
  } catch {
    return undefined;
  } finally {
    db.close();
  }
}

/**
 * The migrator both ways. Its import reads its own export when that finished within the cap,
 * else `xportaExport` (the document xporta exported from the same SQLite store), laid out as
 * mod_storage_xep0227 reads its data dir: one `<user>@<host>.xml` per account (the raw JID, no
 * escaping), with `<server-data><host><user>` as the first elements.
 */
async function migrator(m: Migrator, size: number, work: string, xportaExport: string | undefined): Promise<Row[]> {
  const rows: Row[] = [];
  const out = join(work, 'migrator-out');
  const sqlite = join(work, 'sqlite', 'prosody.sqlite');
  const exported = await migratorStep(m, join(work, 'migrator-export.time'), () =>
    m.api.runProsodyMigrator({ sqliteDatabase: sqlite, outputDir: out, host: BENCH_HOST, timeoutMs: m.timeoutMs }),
  );
  // mod_storage_xep0227 rewrites the whole user file for every archived message: count how far it got.
  const outFile = join(out, `${BENCH_USER}@${BENCH_HOST}.xml`);
  const written = existsSync(outFile) ? (readFileSync(outFile, 'utf8').match(/<result /g) ?? []).length : undefined;
  rows.push({
    size,
    step: 'prosody-migrator export (sql → xep0227)',
    result: exported.result,
    ...(written !== undefined ? { note: `${written.toLocaleString('en')} of ${size.toLocaleString('en')} messages written${'capped' in exported.result ? ' at the cap' : ''}` } : {}),
  });

  const step = 'prosody-migrator import (xep0227 → sql)';
  let inputDir: string;
  let input: string;
  if ('seconds' in exported.result) {
    inputDir = out;
    input = "input: migrator's export";
  } else if (xportaExport) {
    inputDir = join(work, 'xporta-export-xep0227');
    mkdirSync(inputDir, { recursive: true });
    renameSync(xportaExport, join(inputDir, `${BENCH_USER}@${BENCH_HOST}.xml`));
    input = "input: xporta's export";
  } else {
    rows.push({ size, step, result: { failed: "no input: the migrator's export did not finish and xporta's failed" } });
    return rows;
  }
  const target = join(work, 'migrator-back.sqlite');
  const imported = await migratorStep(m, join(work, 'migrator-import.time'), () =>
    m.api.runProsodyMigratorImport({ inputDir, sqliteDatabase: target, host: BENCH_HOST, timeoutMs: m.timeoutMs }),
  );
  const notes = [input];
  // At the cap too: how far it got (each archived message is committed on its own).
  const archived = archiveRows(target);
  if (archived !== undefined) notes.push(`${archived.toLocaleString('en')} of ${size.toLocaleString('en')} messages in SQLite${'capped' in imported.result ? ' at the cap' : ''}`);
  if (imported.errors?.length) notes.push(`${imported.errors.length} error${imported.errors.length === 1 ? '' : 's'} skipped (--keep-going)`);
  rows.push({ size, step, result: imported.result, note: notes.join('; ') });
  return rows;
}

function versions(): string[] {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const dpkg = (name: string): string => spawnSync('dpkg-query', ['-W', '-f=${Version}', name], { encoding: 'utf8' }).stdout || 'not installed';
  const sqlite = (new Database(':memory:').prepare('select sqlite_version() as v').get() as { v: string }).v;
  const psql = spawnSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-tAc', 'show server_version'], { encoding: 'utf8' }).stdout.trim();
  const maria = spawnSync('mariadb', ['-h', '127.0.0.1', '-u', 'root', '-N', '-e', 'select version()'], { encoding: 'utf8' }).stdout.trim();
  const cpu = cpus();
  return [
    `xporta ${pkg.version}, Node.js ${process.version}, SQLite ${sqlite} (better-sqlite3), PostgreSQL ${psql || '?'}, MariaDB ${maria || '?'}, Prosody ${dpkg('prosody')}, ejabberd ${dpkg('ejabberd')}`,
    `machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB memory`,
  ];
}

function cell(row: Row, unit: 'msg' | 'bytes'): [string, string, string, string] {
  const r = row.result;
  const note = (text: string): string => [row.note, text].filter(Boolean).join('; ');
  if ('capped' in r) return [`> ${r.capped} s (cap)`, '–', '–', note('')];
  if ('failed' in r) return ['failed', '–', '–', note(r.failed.slice(0, 60))];
  if (!r.ok) return ['failed', '–', '–', note((r.detail ?? '').split('\n').filter(Boolean).pop()?.slice(0, 60) ?? '')];
  const rate = unit === 'msg' ? `${Math.round((row.messages ?? row.size) / r.seconds).toLocaleString('en')} msg/s` : '';
  const mbs = row.bytes !== undefined ? `${(row.bytes / 1e6 / r.seconds).toFixed(1)} MB/s` : '';
  return [`${r.seconds.toFixed(2)} s`, [rate, mbs].filter(Boolean).join(', '), Number.isNaN(r.peakRssMb) ? '–' : `${r.peakRssMb.toFixed(0)} MB`, note('')];
}

function ratio(rows: readonly Row[], size: number, ours: string, theirs: string): string {
  const a = rows.find((r) => r.size === size && r.step === ours)?.result;
  const b = rows.find((r) => r.size === size && r.step === theirs)?.result;
  if (!a || !b || !('seconds' in a)) return '–';
  if ('capped' in b) return `> ${(b.capped / a.seconds).toFixed(0)}× faster`;
  if (!('seconds' in b)) return '–';
  return `${(b.seconds / a.seconds).toFixed(1)}× faster`;
}

/** The ceiling's time and the step's share of it (ceiling time / step time), or dashes. */
function ceilingCells(rows: readonly Row[], row: Row): [string, string] {
  if (!row.ceiling) return ['–', '–'];
  const bound = rows.find((r) => r.size === row.size && r.step === row.ceiling)?.result;
  if (!bound) return ['–', '–'];
  if (!('seconds' in bound) || !bound.ok) return ['failed', '–'];
  const r = row.result;
  const ratio = 'seconds' in r && r.ok ? `${Math.round((bound.seconds / r.seconds) * 100)}%` : '–';
  return [`${bound.seconds.toFixed(2)} s`, ratio];
}

const CEILING = {
  sqliteScan: 'ceiling: SQLite scan → minimal XML',
  sqliteInsert: "ceiling: SQLite prepared INSERT, Prosody's indexes",
  postgresCopy: 'ceiling: PostgreSQL COPY into the indexed table',
  mysqlLoad: 'ceiling: MariaDB LOAD DATA LOCAL INFILE into the indexed table',
  plainFiles: 'ceiling: the same files written plainly',
  ejabberdScan: 'ceiling: ejabberd archive scan → minimal XML',
} as const;

/** A ceiling as a row: in-process, so wall time only; a failure is a row, not the end of the run. */
async function ceilingRow(size: number, step: string, run: () => CeilingRun | Promise<CeilingRun & { bytes?: number }>, unit: 'rows' | 'files' = 'rows'): Promise<Row> {
  settle();
  try {
    const done = await run();
    const note = unit === 'files' ? `${done.rows} files` : done.rows === size ? undefined : `moved ${done.rows.toLocaleString('en')} rows, not ${size.toLocaleString('en')}`;
    return { size, step, result: { seconds: done.seconds, peakRssMb: NaN, ok: true }, ...('bytes' in done && done.bytes !== undefined ? { bytes: done.bytes } : {}), ...(note ? { note } : {}) };
  } catch (err) {
    return { size, step, result: { failed: err instanceof Error ? err.message : String(err) } };
  }
}

/** One archive size: every step in its own work dir, removed afterwards. */
/** The work dirs of the run, removed by an interrupted run too. */
const workDirs = new Set<string>();
/** The pull section's lines of a run that measures every group (bench/pull.ts). */
const pullSection: string[] = [];

async function measure(size: number, rows: Row[], m: Migrator | undefined): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), `xporta-bench-${size}-`));
  workDirs.add(work);
  const push = (row: Row): void => {
    rows.push(row);
    const bounded = rows.filter((r) => r.size === size && r.ceiling === row.step).map((r) => `${r.step} at ${ceilingCells(rows, r)[1]}`);
    console.error(`  ${row.step}: ${cell(row, 'msg').join(' ')}${bounded.length ? ` (${bounded.join('; ')})` : ''}`);
  };
  try {
    const doc = join(work, 'account.xml');
    await generate(size, doc);
    const docBytes = statSync(doc).size;
    console.error(`# ${size.toLocaleString('en')} messages: document ${(docBytes / 1e6).toFixed(1)} MB`);
    const sqlite = join(work, 'sqlite', 'prosody.sqlite');
    const importStep = async (kind: Target, ceiling?: string): Promise<void> => {
      push({ size, step: `xporta import → ${TARGET_NAMES[kind]} (CLI)`, result: await importInto(kind, doc, work), bytes: docBytes, ...(ceiling ? { ceiling } : {}) });
    };
    // Each ceiling runs right after the step it bounds and reads the rows of the SQLite import,
    // so the SQLite import runs first, whatever --only says.
    await importStep('sqlite', CEILING.sqliteInsert);
    push(await ceilingRow(size, CEILING.sqliteInsert, () => sqliteInsertCeiling(sqlite, join(work, 'ceiling-insert.sqlite'))));
    rmSync(join(work, 'ceiling-insert.sqlite'), { force: true });
    // The exports read the SQLite store; they run before the PostgreSQL and MariaDB imports, whose
    // servers go on checkpointing and purging for a while afterwards on the same two cores.
    const exported = join(work, 'export.xml');
    let cliExport: Measured | undefined;
    if (runs('export') || runs('migrator')) {
      cliExport = timed([...xporta, 'export', JID], sqliteEnv(join(work, 'sqlite')), exported);
      push({ size, step: 'xporta export ← SQLite (CLI)', result: cliExport, bytes: existsSync(exported) ? statSync(exported).size : 0, ceiling: CEILING.sqliteScan });
    }
    if (runs('http') || runs('concurrent')) {
      const http = await exportOverHttp(work);
      push({ size, step: 'xporta export ← SQLite (HTTP)', result: http, bytes: http.bytes, ceiling: CEILING.sqliteScan, note: `service CPU ${http.cpuSeconds.toFixed(1)} s` });
      if (runs('concurrent')) {
        const many = await exportOverHttp(work, concurrency);
        const aggregate = 'seconds' in http && http.ok && many.ok ? `; aggregate ${((http.seconds * concurrency) / many.seconds).toFixed(2)}× one export's throughput` : '';
        push({ size, step: `${concurrency} concurrent exports ← SQLite (HTTP, one service)`, result: many, bytes: many.bytes, messages: size * concurrency, note: `${(size * concurrency).toLocaleString('en')} messages in all${aggregate}; service CPU ${many.cpuSeconds.toFixed(1)} s` });
      }
    }
    if (runs('pull')) pullSection.push(...(pullSection.length > 0 ? [''] : []), ...(await runPullBench(size, sqlite, work, xporta)));
    const scanned = join(work, 'ceiling-scan.xml');
    push(await ceilingRow(size, CEILING.sqliteScan, () => sqliteScanCeiling(sqlite, scanned)));
    rmSync(scanned, { force: true });
    if (runs('postgres')) {
      await importStep('postgres', CEILING.postgresCopy);
      push(await ceilingRow(size, CEILING.postgresCopy, () => postgresCopyCeiling(sqlite, sqlServer('postgres'))));
    }
    if (runs('mysql')) {
      await importStep('mysql', CEILING.mysqlLoad);
      push(await ceilingRow(size, CEILING.mysqlLoad, () => mysqlLoadDataCeiling(sqlite, sqlServer('mysql'))));
    }
    if (runs('files')) {
      await importStep('files', CEILING.plainFiles);
      push(await ceilingRow(size, CEILING.plainFiles, () => plainFilesCeiling(join(work, 'files'), join(work, 'ceiling-files')), 'files'));
      rmSync(join(work, 'ceiling-files'), { recursive: true, force: true });
    }
    if (runs('ejabberd')) {
      if (existsSync(EJABBERD_SCHEMA)) {
        await importStep('ejabberd');
        const ejExported = join(work, 'ejabberd-export.xml');
        push({ size, step: 'xporta export ← ejabberd (SQLite, CLI)', result: timed([...xporta, 'export', JID], ejabberdEnv(work), ejExported), bytes: existsSync(ejExported) ? statSync(ejExported).size : 0, ceiling: CEILING.ejabberdScan });
        rmSync(ejExported, { force: true });
        push(await ceilingRow(size, CEILING.ejabberdScan, () => ejabberdScanCeiling(join(work, 'ejabberd.sqlite'), ejExported)));
        rmSync(ejExported, { force: true });
      } else {
        push({ size, step: `xporta import → ${TARGET_NAMES.ejabberd} (CLI)`, result: { failed: `ejabberd is not installed (${EJABBERD_SCHEMA})` } });
      }
    }
    // export.xml stays for the migrator: its import reads it when its own export hits the cap.
    if (m && runs('migrator')) {
      const xportaExport = cliExport?.ok && existsSync(exported) && statSync(exported).size > 0 ? exported : undefined;
      for (const row of await migrator(m, size, work, xportaExport)) push(row);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
    workDirs.delete(work);
  }
}

// --- Host transfers (bench/host.ts) ---
const hostSizes = values.hosts ? values.hosts.split(',').map(Number) : [];

async function hostsOnly(): Promise<void> {
  const section = await runHostBench(hostSizes, { xporta, timed });
  console.log(section.join('\n'));
  const file = join(root, 'bench', 'results.md');
  if (!values['no-write']) writeFileSync(file, withHostSection(existsSync(file) ? readFileSync(file, 'utf8') : '# xporta benchmark\n', section));
}
// --- end of host transfers ---

// --- Pull over the client protocol (bench/pull.ts) ---
async function pullOnly(): Promise<void> {
  const section: string[] = [];
  for (const size of sizes) {
    const work = mkdtempSync(join(tmpdir(), `xporta-bench-pull-${size}-`));
    workDirs.add(work);
    try {
      const doc = join(work, 'account.xml');
      await generate(size, doc);
      console.error(`# ${size.toLocaleString('en')} messages: pull over the client protocol`);
      const imported = await importInto('sqlite', doc, work);
      if (!imported.ok) throw new Error(`the SQLite import failed: ${imported.detail ?? ''}`);
      rmSync(doc, { force: true });
      section.push(...(section.length > 0 ? [''] : []), ...(await runPullBench(size, join(work, 'sqlite', 'prosody.sqlite'), work, xporta)));
    } finally {
      rmSync(work, { recursive: true, force: true });
      workDirs.delete(work);
    }
  }
  console.log(section.join('\n'));
  const file = join(root, 'bench', 'results.md');
  if (!values['no-write']) writeFileSync(file, withPullSection(existsSync(file) ? readFileSync(file, 'utf8') : '# xporta benchmark\n', section));
}
// --- end of pull ---

async function main(): Promise<void> {
  if (!existsSync(cli)) throw new Error('run `npm run build` first');
  if (hostSizes.length > 0 && !values.sizes && !values.full) return hostsOnly();
  if (only?.every((g) => g === 'pull')) return pullOnly();
  const rows: Row[] = [];
  const benchDir = mkdtempSync(join(tmpdir(), 'xporta-bench-'));
  // Stopped (Ctrl-C, kill), the bench still prints and writes what it measured so far.
  const stop = (signal: NodeJS.Signals): void => {
    report(rows, `interrupted by ${signal}: the steps measured before it`);
    for (const dir of [...workDirs, benchDir]) rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
  try {
    const m = values['no-migrator'] ? undefined : await loadMigrator(benchDir);
    for (const size of sizes) await measure(size, rows, m);
  } finally {
    rmSync(benchDir, { recursive: true, force: true });
  }
  const hostSection = hostSizes.length > 0 ? await runHostBench(hostSizes, { xporta, timed }) : [];
  report(rows, undefined, hostSection);
}

/**
 * Writes the run's table, then the host section when this run measured one, then every other
 * `## ` section of the earlier results.md (notes of earlier investigations), unchanged.
 */
function report(rows: readonly Row[], partial?: string, hostSection: readonly string[] = []): void {
  const lines = [
    '# xporta benchmark',
    '',
    ...versions().map((v) => `- ${v}`),
    ...(partial ? [`- **partial run**, ${partial}`] : []),
    `- run ${new Date().toISOString()}; each step a fresh process; prosody-migrator capped at ${capSeconds} s; its import reads its own export, or xporta's export of the same data when its export hit the cap (see note)`,
    '- account: 500 roster items in groups, vCard with a 40 KB photo, 20 PEP nodes with items, N archived messages with random UUID ids as Prosody gives them (1 in 7 OMEMO-encrypted)',
    "- ceilings: the same run, the same archive rows (read from the SQLite store xporta imported, or ejabberd's), moved by the database's or file system's own fastest path in the bench's process (wall time only, no process start); ratio = ceiling time / step time, 100% = at the ceiling",
    '',
    '| messages | step | wall time | throughput | peak RSS | ceiling | ratio | note |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows.map((row) => {
      const [wall, rate, rss, note] = cell(row, 'msg');
      return `| ${row.size.toLocaleString('en')} | ${row.step} | ${wall} | ${rate} | ${rss} | ${ceilingCells(rows, row).join(' | ')} | ${note} |`;
    }),
    '',
    ...(rows.some((r) => r.step.startsWith('prosody-migrator'))
      ? [
          '| messages | xporta export vs prosody-migrator export | xporta import (SQLite) vs prosody-migrator import |',
          '| ---: | ---: | ---: |',
          ...sizes.map(
            (size) =>
              `| ${size.toLocaleString('en')} | ${ratio(rows, size, 'xporta export ← SQLite (CLI)', 'prosody-migrator export (sql → xep0227)')} | ${ratio(rows, size, 'xporta import → SQLite (CLI)', 'prosody-migrator import (xep0227 → sql)')} |`,
          ),
          '',
        ]
      : []),
  ];
  const table = [...lines, ...hostSection].join('\n');
  console.log(table);
  if (values['no-write']) return;
  const file = join(root, 'bench', 'results.md');
  const earlier = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const regenerated = hostSection.length > 0 ? ['## Host transfers'] : [];
  const kept = earlier.split(/\n(?=## )/).slice(1).filter((s) => !regenerated.some((h) => s.startsWith(h)));
  const written = [table.trimEnd(), ...kept.map((s) => s.trimEnd())].join('\n\n') + '\n';
  writeFileSync(file, pullSection.length > 0 ? withPullSection(written, pullSection) : written);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
