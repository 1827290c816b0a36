/**
 * `npm run bench [-- --sizes 10000,100000,1000000] [--full] [--cap SECONDS]`
 *
 * For each archive size, with a fresh process for every measured step: import into an empty
 * SQLite, PostgreSQL and MariaDB store (CLI), export from SQLite via the CLI and via HTTP, and, on
 * the same data, Prosody's own prosody-migrator SQLite → xep0227 and back, capped in time.
 * Prints a Markdown table with versions and the machine, and writes it to bench/results.md.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { writeDocument } from '../src/xep0227/writer.js';
import { runProsodyMigrator, runProsodyMigratorImport } from '../test/support/prosody-migrator.js';
import { createTestDatabase, dropTestDatabase, sqlServer } from '../test/support/sql-databases.js';
import { BENCH_HOST, BENCH_USER, syntheticAccount } from './synthetic.js';

const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist', 'cli.js');
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
}

const { values } = parseArgs({
  options: {
    sizes: { type: 'string' },
    full: { type: 'boolean' },
    cap: { type: 'string' },
    'no-migrator': { type: 'boolean' },
  },
});
const sizes = values.sizes ? values.sizes.split(',').map(Number) : values.full ? [10_000, 100_000, 1_000_000] : [10_000];
const capSeconds = Number(values.cap ?? 300);

/** Runs a command under GNU time: wall seconds and peak RSS of that process alone. */
function timed(command: string[], env: NodeJS.ProcessEnv, stdoutFile?: string, stdin?: string): Measured {
  const timeFile = join(tmpdir(), `xporta-bench-time-${process.pid}`);
  const run = spawnSync('/usr/bin/time', ['-f', '%e %M', '-o', timeFile, ...command], {
    env: { PATH: process.env.PATH, ...env },
    stdio: [stdin ? 'pipe' : 'ignore', stdoutFile ? 'pipe' : 'ignore', 'pipe'],
    ...(stdin ? { input: readFileSync(stdin) } : {}),
    maxBuffer: 4 * 1024 ** 3,
  });
  if (stdoutFile && run.stdout) writeFileSync(stdoutFile, run.stdout);
  const [seconds = 'NaN', kb = 'NaN'] = readFileSync(timeFile, 'utf8').trim().split(/\s+/).slice(-2);
  rmSync(timeFile, { force: true });
  return { seconds: Number(seconds), peakRssMb: Number(kb) / 1024, ok: run.status === 0, ...(run.status !== 0 ? { detail: String(run.stderr).slice(-500) } : {}) };
}

async function generate(size: number, file: string): Promise<void> {
  await pipeline(Readable.from(writeDocument(syntheticAccount(size))), createWriteStream(file));
}

function sqliteEnv(dir: string): NodeJS.ProcessEnv {
  return { XPORTA_DATA_DIR: dir, XPORTA_LOG_LEVEL: 'warn' };
}

type Target = 'sqlite' | 'postgres' | 'mysql' | 'files';

const TARGET_NAMES: Record<Target, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL', mysql: 'MariaDB', files: 'Prosody internal files' };

async function importInto(kind: Target, doc: string, work: string): Promise<Measured> {
  if (kind === 'sqlite') {
    return timed([process.execPath, cli, 'import', JID, doc, '--create-account'], sqliteEnv(join(work, 'sqlite')));
  }
  if (kind === 'files') {
    return timed([process.execPath, cli, 'import', JID, doc, '--create-account'], {
      XPORTA_DATA_DIR: join(work, 'files-state'),
      XPORTA_LOG_LEVEL: 'warn',
      XPORTA_STORAGE: JSON.stringify({ type: 'prosody-files', path: join(work, 'files') }),
    });
  }
  const server = sqlServer(kind);
  const database = await createTestDatabase(kind, server);
  try {
    const storage = { type: 'prosody-sql', driver: kind, host: server.host, port: server.port, database, username: server.username, ...(server.password ? { password: server.password } : {}) };
    return timed([process.execPath, cli, 'import', JID, doc, '--create-account'], {
      XPORTA_DATA_DIR: join(work, kind),
      XPORTA_LOG_LEVEL: 'warn',
      XPORTA_STORAGE: JSON.stringify(storage),
    });
  } finally {
    await dropTestDatabase(kind, database, server);
  }
}

/** The service in its own process (under GNU time for its peak RSS), the client here. */
async function exportOverHttp(work: string): Promise<Measured & { bytes: number }> {
  const port = 18_000 + Math.floor(Math.random() * 2000);
  const timeFile = join(work, 'serve.time');
  const service = spawn('/usr/bin/time', ['-f', '%e %M', '-o', timeFile, process.execPath, cli, 'serve'], {
    env: { PATH: process.env.PATH, ...sqliteEnv(join(work, 'sqlite')), XPORTA_LISTEN__PORT: String(port), XPORTA_OPERATOR_TOKEN: TOKEN },
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
  const res = await request(`http://127.0.0.1:${port}/v1/users/${encodeURIComponent(JID)}/export`, { headers: { authorization: `Bearer ${TOKEN}` } });
  let bytes = 0;
  for await (const chunk of res.body) bytes += (chunk as Buffer).length;
  const seconds = (performance.now() - started) / 1000;
  const exited = new Promise((r) => service.on('exit', r));
  // GNU time forwards nothing, so signal the node child itself.
  spawnSync('pkill', ['-TERM', '-P', String(service.pid)]);
  await exited;
  const kb = Number(readFileSync(timeFile, 'utf8').trim().split(/\s+/).pop());
  return { seconds, peakRssMb: kb / 1024, ok: res.statusCode === 200, bytes };
}

async function migrator(size: number, work: string): Promise<Row[]> {
  const rows: Row[] = [];
  const out = join(work, 'migrator-out');
  const sqlite = join(work, 'sqlite', 'prosody.sqlite');
  try {
    const started = performance.now();
    await runProsodyMigrator({ sqliteDatabase: sqlite, outputDir: out, host: BENCH_HOST, timeoutMs: capSeconds * 1000 });
    rows.push({ size, step: 'prosody-migrator export (sql → xep0227)', result: { seconds: (performance.now() - started) / 1000, peakRssMb: NaN, ok: true } });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    rows.push({ size, step: 'prosody-migrator export (sql → xep0227)', result: /did not finish|timed out|SIGKILL/i.test(message) ? { capped: capSeconds } : { failed: message.split('\n')[0] ?? '' } });
    return rows;
  }
  try {
    const target = join(work, 'migrator-back.sqlite');
    const started = performance.now();
    await runProsodyMigratorImport({ inputDir: out, sqliteDatabase: target, host: BENCH_HOST, timeoutMs: capSeconds * 1000 });
    rows.push({ size, step: 'prosody-migrator import (xep0227 → sql)', result: { seconds: (performance.now() - started) / 1000, peakRssMb: NaN, ok: true } });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    rows.push({ size, step: 'prosody-migrator import (xep0227 → sql)', result: /did not finish|timed out|SIGKILL/i.test(message) ? { capped: capSeconds } : { failed: message.split('\n')[0] ?? '' } });
  }
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
    `xporta ${pkg.version}, Node.js ${process.version}, SQLite ${sqlite} (better-sqlite3), PostgreSQL ${psql || '?'}, MariaDB ${maria || '?'}, Prosody ${dpkg('prosody')}`,
    `machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB memory`,
  ];
}

function cell(row: Row, unit: 'msg' | 'bytes'): [string, string, string, string] {
  const r = row.result;
  if ('capped' in r) return [`> ${r.capped} s (cap)`, '–', '–', '–'];
  if ('failed' in r) return ['failed', '–', '–', r.failed.slice(0, 60)];
  if (!r.ok) return ['failed', '–', '–', (r.detail ?? '').split('\n').filter(Boolean).pop()?.slice(0, 60) ?? ''];
  const rate = unit === 'msg' ? `${Math.round(row.size / r.seconds).toLocaleString('en')} msg/s` : '';
  const mbs = row.bytes !== undefined ? `${(row.bytes / 1e6 / r.seconds).toFixed(1)} MB/s` : '';
  return [`${r.seconds.toFixed(2)} s`, [rate, mbs].filter(Boolean).join(', '), Number.isNaN(r.peakRssMb) ? '–' : `${r.peakRssMb.toFixed(0)} MB`, ''];
}

function ratio(rows: Row[], size: number, ours: string, theirs: string): string {
  const a = rows.find((r) => r.size === size && r.step === ours)?.result;
  const b = rows.find((r) => r.size === size && r.step === theirs)?.result;
  if (!a || !b || !('seconds' in a)) return '–';
  if ('capped' in b) return `> ${(b.capped / a.seconds).toFixed(0)}× faster`;
  if (!('seconds' in b)) return '–';
  return `${(b.seconds / a.seconds).toFixed(1)}× faster`;
}

async function main(): Promise<void> {
  if (!existsSync(cli)) throw new Error('run `npm run build` first');
  const rows: Row[] = [];
  for (const size of sizes) {
    const work = mkdtempSync(join(tmpdir(), `xporta-bench-${size}-`));
    try {
      const doc = join(work, 'account.xml');
      await generate(size, doc);
      const docBytes = statSync(doc).size;
      console.error(`# ${size.toLocaleString('en')} messages: document ${(docBytes / 1e6).toFixed(1)} MB`);
      for (const kind of ['sqlite', 'postgres', 'mysql', 'files'] as const) {
        rows.push({ size, step: `xporta import → ${TARGET_NAMES[kind]} (CLI)`, result: await importInto(kind, doc, work), bytes: docBytes });
        console.error(`  ${rows.at(-1)?.step}: ${cell(rows.at(-1)!, 'msg').join(' ')}`);
      }
      const exported = join(work, 'export.xml');
      const cliExport = timed([process.execPath, cli, 'export', JID], sqliteEnv(join(work, 'sqlite')), exported);
      rows.push({ size, step: 'xporta export ← SQLite (CLI)', result: cliExport, bytes: existsSync(exported) ? statSync(exported).size : 0 });
      console.error(`  ${rows.at(-1)?.step}: ${cell(rows.at(-1)!, 'msg').join(' ')}`);
      rmSync(exported, { force: true });
      const http = await exportOverHttp(work);
      rows.push({ size, step: 'xporta export ← SQLite (HTTP)', result: http, bytes: http.bytes });
      console.error(`  ${rows.at(-1)?.step}: ${cell(rows.at(-1)!, 'msg').join(' ')}`);
      if (!values['no-migrator']) {
        for (const row of await migrator(size, work)) {
          rows.push(row);
          console.error(`  ${row.step}: ${cell(row, 'msg').join(' ')}`);
        }
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  const lines = [
    '# xporta benchmark',
    '',
    ...versions().map((v) => `- ${v}`),
    `- run ${new Date().toISOString()}; each step a fresh process; prosody-migrator capped at ${capSeconds} s`,
    '- account: 500 roster items in groups, vCard with a 40 KB photo, 20 PEP nodes with items, N archived messages (1 in 7 OMEMO-encrypted)',
    '',
    '| messages | step | wall time | throughput | peak RSS | note |',
    '| ---: | --- | ---: | ---: | ---: | --- |',
    ...rows.map((row) => `| ${row.size.toLocaleString('en')} | ${row.step} | ${cell(row, 'msg').join(' | ')} |`),
    '',
    '| messages | xporta export vs prosody-migrator export | xporta import (SQLite) vs prosody-migrator import |',
    '| ---: | ---: | ---: |',
    ...sizes.map(
      (size) =>
        `| ${size.toLocaleString('en')} | ${ratio(rows, size, 'xporta export ← SQLite (CLI)', 'prosody-migrator export (sql → xep0227)')} | ${ratio(rows, size, 'xporta import → SQLite (CLI)', 'prosody-migrator import (xep0227 → sql)')} |`,
    ),
    '',
  ];
  const table = lines.join('\n');
  console.log(table);
  writeFileSync(join(root, 'bench', 'results.md'), table);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
