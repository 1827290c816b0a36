/**
 * Host transfers in the benchmark (`--hosts 10000,100000`): a host document of N small accounts
 * (bench/host-synthetic.ts) imported into an empty store and exported again, through the CLI and
 * through the HTTP service, on SQLite (WAL, where exports are snapshots) and on PostgreSQL. Each
 * step runs in a fresh process under GNU time; the HTTP rows give the service's peak RSS. Each row
 * also gives the process's CPU seconds (user + system; for HTTP the service's, start included),
 * which a machine shared with other work changes less than the wall time.
 * `XPORTA_BENCH_HOST_STORES=sqlite` (or `postgresql`) measures one store only.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';
import { writeDocument } from '../src/xep0227/writer.js';
import { syntheticHost } from './host-synthetic.js';
import { createTestDatabase, dropTestDatabase, sqlServer } from './sql-databases.js';
import { timedCli } from './timed-cli.js';
import { BENCH_HOST } from './synthetic.js';

export interface HostMeasured {
  readonly seconds: number;
  readonly peakRssMb: number;
  /** User + system CPU seconds of the measured process, when known. */
  readonly cpuSeconds?: number;
  readonly ok: boolean;
  readonly detail?: string;
}

export interface HostRow {
  readonly accounts: number;
  readonly step: string;
  readonly result: HostMeasured;
  readonly bytes: number;
}

/** How a step runs xporta: the command line, and one step timed under GNU time (run.ts's `timed`). */
export interface HostBenchTools {
  readonly xporta: readonly string[];
  readonly timed: (command: string[], env: NodeJS.ProcessEnv, stdoutFile?: string) => HostMeasured;
}

const TOKEN = 'bench-operator-token';
const BIG_LIMITS = { XPORTA_LIMITS__MAX_UPLOAD_BYTES: String(64 * 1024 ** 3), XPORTA_LIMITS__REQUEST_TIMEOUT_MS: String(6 * 3600_000) };

type Store = { readonly name: string; readonly env: NodeJS.ProcessEnv; readonly drop: () => Promise<void> };

function sqliteStore(dir: string): Store {
  mkdirSync(dir, { recursive: true });
  return {
    name: 'SQLite',
    env: {
      XPORTA_DATA_DIR: dir,
      XPORTA_LOG_LEVEL: 'warn',
      XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'sqlite', database: join(dir, 'prosody.sqlite'), journalMode: 'wal' }),
      ...BIG_LIMITS,
    },
    drop: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  };
}

async function postgresStore(dir: string): Promise<Store> {
  mkdirSync(dir, { recursive: true });
  const server = sqlServer('postgres');
  const database = await createTestDatabase('postgres', server);
  const storage = { type: 'prosody-sql', driver: 'postgres', host: server.host, port: server.port, database, username: server.username, ...(server.password ? { password: server.password } : {}) };
  return {
    name: 'PostgreSQL',
    env: { XPORTA_DATA_DIR: dir, XPORTA_LOG_LEVEL: 'warn', XPORTA_STORAGE: JSON.stringify(storage), ...BIG_LIMITS },
    drop: async () => {
      await dropTestDatabase('postgres', database, server);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `work` against a service started on `store`, and stops it: the seconds `work` took and the service's peak RSS. */
async function withService(tools: HostBenchTools, store: Store, work: string, run: (base: string) => Promise<{ ok: boolean; bytes: number; detail?: string }>): Promise<HostMeasured & { bytes: number }> {
  const port = 20_000 + Math.floor(Math.random() * 2000);
  const timeFile = join(work, `serve-${port}.time`);
  spawnSync('sync', [], { stdio: 'ignore' });
  const service = spawn('/usr/bin/time', ['-f', '%e %M %U %S', '-o', timeFile, ...tools.xporta, 'serve'], {
    env: { PATH: process.env.PATH, ...store.env, XPORTA_LISTEN__PORT: String(port), XPORTA_OPERATOR_TOKEN: TOKEN },
    stdio: 'ignore',
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 400; i++) {
    try {
      if ((await fetch(`${base}/health`)).ok) break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const started = performance.now();
  let outcome: { ok: boolean; bytes: number; detail?: string };
  try {
    outcome = await run(base);
  } catch (err) {
    outcome = { ok: false, bytes: 0, detail: err instanceof Error ? err.message : String(err) };
  }
  const seconds = (performance.now() - started) / 1000;
  const exited = new Promise((r) => service.on('exit', r));
  spawnSync('pkill', ['-TERM', '-P', String(service.pid)]);
  await exited;
  const [kb = NaN, user = NaN, system = NaN] = readFileSync(timeFile, 'utf8').trim().split(/\s+/).slice(-3).map(Number);
  return { seconds, peakRssMb: kb / 1024, cpuSeconds: user + system, ...outcome };
}

async function httpImport(tools: HostBenchTools, store: Store, doc: string, work: string): Promise<HostMeasured> {
  return withService(tools, store, work, async (base) => {
    const res = await request(`${base}/v1/hosts/${BENCH_HOST}/import?createAccount=true`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/xml' },
      body: createReadStream(doc),
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    const text = await res.body.text();
    const failed = res.statusCode === 200 ? (JSON.parse(text) as { progress: { failed: number } }).progress.failed : -1;
    return { ok: res.statusCode === 200 && failed === 0, bytes: 0, ...(res.statusCode !== 200 || failed !== 0 ? { detail: `${res.statusCode}: ${text.slice(0, 300)}` } : {}) };
  });
}

async function httpExport(tools: HostBenchTools, store: Store, work: string): Promise<HostMeasured & { bytes: number }> {
  return withService(tools, store, work, async (base) => {
    const res = await request(`${base}/v1/hosts/${BENCH_HOST}/export`, { headers: { authorization: `Bearer ${TOKEN}` }, headersTimeout: 0, bodyTimeout: 0 });
    let bytes = 0;
    for await (const chunk of res.body) bytes += (chunk as Buffer).length;
    return { ok: res.statusCode === 200, bytes };
  });
}

function sizeOf(file: string): number {
  return existsSync(file) ? statSync(file).size : 0;
}

/** Every host step for `accounts` accounts; rows are printed as they come. */
export async function measureHost(accounts: number, tools: HostBenchTools, onRow: (row: HostRow) => void): Promise<HostRow[]> {
  const work = mkdtempSync(join(tmpdir(), `xporta-bench-host-${accounts}-`));
  const rows: HostRow[] = [];
  const push = (row: HostRow): void => {
    rows.push(row);
    onRow(row);
  };
  try {
    const doc = join(work, 'host.xml');
    await pipeline(Readable.from(writeDocument(syntheticHost(accounts))), createWriteStream(doc));
    const docBytes = sizeOf(doc);
    console.error(`# host of ${accounts.toLocaleString('en')} small accounts: document ${(docBytes / 1e6).toFixed(1)} MB`);
    const only = process.env.XPORTA_BENCH_HOST_STORES;
    // Each store opened is a new, empty one in a directory of its own: the HTTP import must not
    // merge into what the CLI import just wrote.
    let opened = 0;
    const stores: (() => Promise<Store>)[] = [
      ...(only === undefined || only === 'sqlite' ? [() => Promise.resolve(sqliteStore(join(work, `sqlite-${++opened}`)))] : []),
      ...(only === undefined || only === 'postgresql' ? [() => postgresStore(join(work, `pg-${++opened}`))] : []),
    ];
    for (const open of stores) {
      // One store imported through the CLI (then exported both ways), another through HTTP.
      const cliStore = await open();
      const httpStore = await open();
      try {
        push({ accounts, step: `host import → ${cliStore.name} (CLI)`, result: timedCli([...tools.xporta, 'import', '--host', doc, '--create-account'], cliStore.env, join(work, 'report.json')), bytes: docBytes });
        push({ accounts, step: `host import → ${httpStore.name} (HTTP)`, result: await httpImport(tools, httpStore, doc, work), bytes: docBytes });
        const exported = join(work, 'export.xml');
        const cliExport = timedCli([...tools.xporta, 'export', '--host', BENCH_HOST], cliStore.env, exported);
        push({ accounts, step: `host export ← ${cliStore.name} (CLI)`, result: cliExport, bytes: sizeOf(exported) });
        rmSync(exported, { force: true });
        const http = await httpExport(tools, cliStore, work);
        push({ accounts, step: `host export ← ${cliStore.name} (HTTP)`, result: http, bytes: http.bytes });
      } finally {
        await cliStore.drop();
        await httpStore.drop();
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return rows;
}

/** The rows as the Markdown section of bench/results.md. */
export function hostSection(rows: readonly HostRow[]): string[] {
  const cell = (row: HostRow): string => {
    const r = row.result;
    if (!r.ok) return `failed: ${(r.detail ?? '').replace(/\s+/g, ' ').slice(0, 120)} | | | |`;
    const cpu = r.cpuSeconds !== undefined ? `${r.cpuSeconds.toFixed(1)} s (${Math.round(row.accounts / r.cpuSeconds).toLocaleString('en')} accounts/CPU-s)` : '';
    return `${r.seconds.toFixed(1)} s | ${Math.round(row.accounts / r.seconds).toLocaleString('en')} accounts/s | ${cpu} | ${Math.round(r.peakRssMb)} MB |`;
  };
  return [
    '## Host transfers',
    '',
    '- host: N accounts, each with SCRAM credentials, 2 contacts, a vCard, PEP bookmarks (one room), 3 archived and 1 offline message (bench/host-synthetic.ts)',
    '- each step a fresh process; HTTP rows: peak RSS of the service; SQLite in WAL mode (exports are per-account snapshots)',
    '',
    '| accounts | step | wall time | throughput | CPU time | peak RSS |',
    '| ---: | --- | ---: | ---: | ---: | ---: |',
    ...rows.map((row) => `| ${row.accounts.toLocaleString('en')} | ${row.step} | ${cell(row)}`),
    '',
  ];
}

/** Every host size in turn; the section's lines. */
export async function runHostBench(sizes: readonly number[], tools: HostBenchTools): Promise<string[]> {
  const rows: HostRow[] = [];
  for (const accounts of sizes) {
    rows.push(
      ...(await measureHost(accounts, tools, (row) => {
        const r = row.result;
        console.error(`  ${row.step}: ${r.ok ? `${r.seconds.toFixed(1)} s, ${Math.round(row.accounts / r.seconds)} accounts/s, CPU ${r.cpuSeconds?.toFixed(1) ?? '?'} s, ${Math.round(r.peakRssMb)} MB` : `failed ${r.detail ?? ''}`}`);
      })),
    );
  }
  return hostSection(rows);
}

/** `results` with its "Host transfers" section replaced by `section` (or `section` appended). */
export function withHostSection(results: string, section: readonly string[]): string {
  const start = results.indexOf('## Host transfers');
  if (start < 0) return `${results.trimEnd()}\n\n${section.join('\n')}`;
  const next = results.indexOf('\n## ', start + 1);
  return `${results.slice(0, start)}${section.join('\n')}${next < 0 ? '' : results.slice(next + 1)}`;
}
