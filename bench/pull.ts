/**
 * A pull over the client protocol in the benchmark (`--only pull`): the account the SQLite import
 * wrote is served by a real Prosody 0.12 (the same SQLite file as its storage, STARTTLS with a
 * certificate from a CA the bench makes), and `xporta pull` reads it back over c2s in a child
 * process under GNU time, once per page size. Next to it, the storage-level `xporta export` of the
 * same file. Where the time goes: xporta's CPU seconds (GNU time), Prosody's CPU seconds over the
 * same interval (/proc/<pid>/stat), and one MAM page's round trip measured from this process on a
 * session of its own (request to <fin>, messages parsed but not written).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { AddressPolicy } from '../src/lib/net/address-policy.js';
import { element } from '../src/records/model.js';
import { NS } from '../src/records/namespaces.js';
import { ClientStream } from '../src/storage/xmpp-client/stream.js';
import { canConnect, freePorts } from '../test/support/ports.js';
import { renderProsodyConfig } from '../test/support/prosody-config.js';
import { prosodyBinaries } from '../test/support/server-versions.js';
import { makeTestCertificates } from '../test/support/test-ca.js';
import { timedCli } from './timed-cli.js';
import { BENCH_HOST, BENCH_PASSWORD, BENCH_USER } from './synthetic.js';

const JID = `${BENCH_USER}@${BENCH_HOST}`;
/** Prosody's `max_archive_query_results` for the bench server: above every page size tried. */
const SERVER_MAX = 1000;
export const PULL_PAGE_SIZES = [50, 250, 1000] as const;
const SECTION = '## Pull over the client protocol';

interface BenchProsody {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly c2sPort: number;
  stop(): Promise<void>;
}

/**
 * Prosody 0.12 in the foreground on `dir` (config written by test/support/prosody-config.ts, the
 * launcher of the tests being tied to vitest): SQLite storage in dir/data/prosody.sqlite, the
 * certificates in dir/certs, ready when its c2s port answers.
 */
async function startBenchProsody(dir: string, extraGlobalConfig: string): Promise<BenchProsody> {
  const [c2sPort = 0, componentPort = 0] = await freePorts(2);
  const configPath = join(dir, 'prosody.cfg.lua');
  writeFileSync(
    configPath,
    renderProsodyConfig({
      dataDir: join(dir, 'data'),
      pidFile: join(dir, 'prosody.pid'),
      logFile: join(dir, 'prosody.log'),
      certsDir: join(dir, 'certs'),
      logLevel: 'info',
      c2sPort,
      componentPort,
      hosts: [BENCH_HOST],
      component: { jid: `xporta.${BENCH_HOST}`, secret: randomBytes(12).toString('hex') },
      storage: 'sqlite',
      sql: { driver: 'SQLite3', database: join(dir, 'data', 'prosody.sqlite') },
      version: '0.12',
      passwordHash: 'SHA-1',
      extraModules: ['tls'],
      extraGlobalConfig,
    }),
  );
  const child = spawn(prosodyBinaries('0.12').prosody, ['--config', configPath, '-F'], { cwd: dir, stdio: 'ignore' });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 60_000;
  while (!(await canConnect(c2sPort))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`Prosody did not start: ${readFileSync(join(dir, 'prosody.log'), 'utf8').slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  if (child.pid === undefined) throw new Error('Prosody has no pid');
  return { child, pid: child.pid, c2sPort, stop };
}

const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** User + system CPU seconds of a process so far (/proc/<pid>/stat fields 14 and 15). */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** Archived messages in a pulled document (one <result> each). */
function countResults(file: string): number {
  const text = readFileSync(file, 'utf8');
  let n = 0;
  for (let i = text.indexOf('<result '); i >= 0; i = text.indexOf('<result ', i + 1)) n++;
  return n;
}

/** Median round trip of `pages` MAM pages of `pageSize`, from the request to its <fin>, in ms. */
async function pageRoundTrip(prosody: BenchProsody, ca: string, pageSize: number, pages: number): Promise<number> {
  const stream = await ClientStream.open({
    jid: JID,
    password: BENCH_PASSWORD,
    policy: new AddressPolicy(['127.0.0.0/8']),
    ca: [readFileSync(ca, 'utf8')],
    services: [{ host: '127.0.0.1', port: prosody.c2sPort, directTls: false }],
    timeoutMs: 60_000,
  });
  try {
    const times: number[] = [];
    let after: string | undefined;
    for (let i = 0; i < pages; i++) {
      const started = performance.now();
      const set = [element('max', NS.rsm, {}, [String(pageSize)]), ...(after ? [element('after', NS.rsm, {}, [after])] : [])];
      const answer = await stream.iq('set', element('query', NS.mam, { queryid: randomBytes(4).toString('hex') }, [element('set', NS.rsm, {}, set)]));
      times.push(performance.now() - started);
      const fin = answer.children.find((c) => typeof c !== 'string' && c.name === 'fin');
      const rsm = fin && typeof fin !== 'string' ? fin.children.find((c) => typeof c !== 'string' && c.name === 'set') : undefined;
      const last = rsm && typeof rsm !== 'string' ? rsm.children.find((c) => typeof c !== 'string' && c.name === 'last') : undefined;
      after = last && typeof last !== 'string' ? last.children.join('') : undefined;
      if (!after) break;
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)] ?? NaN;
  } finally {
    await stream.close();
  }
}

const f1 = (n: number): string => n.toFixed(1);
const int = (n: number): string => Math.round(n).toLocaleString('en');

/**
 * Serves `sqliteFile` (an xporta import of the bench account) from Prosody 0.12 and measures the
 * pulls and the storage export; returns the section's lines.
 */
export async function runPullBench(size: number, sqliteFile: string, work: string, xporta: readonly string[]): Promise<string[]> {
  const dir = join(work, 'pull');
  const prosodyDir = join(dir, 'prosody');
  mkdirSync(join(prosodyDir, 'data'), { recursive: true });
  mkdirSync(join(prosodyDir, 'certs'), { recursive: true });
  const store = join(prosodyDir, 'data', 'prosody.sqlite');
  copyFileSync(sqliteFile, store);
  const certs = makeTestCertificates(dir, BENCH_HOST);
  copyFileSync(certs.cert, join(prosodyDir, 'certs', `${BENCH_HOST}.crt`));
  copyFileSync(certs.key, join(prosodyDir, 'certs', `${BENCH_HOST}.key`));
  const passwordFile = join(dir, 'password');
  writeFileSync(passwordFile, BENCH_PASSWORD, { mode: 0o600 });
  const rows: string[] = [];

  // The storage-level export of the same file, before Prosody opens it.
  const exported = join(dir, 'export.xml');
  const exportRun = timedCli([...xporta, 'export', JID], { XPORTA_DATA_DIR: join(dir, 'export-state'), XPORTA_LOG_LEVEL: 'warn', XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'sqlite', database: store }) }, exported);
  rows.push(`| xporta export ← Prosody's SQLite (storage, CLI) | – | ${exportRun.ok ? f1(exportRun.seconds) : 'failed'} s | ${f1(exportRun.cpuSeconds)} s | ${int(size / exportRun.cpuSeconds)} | ${int(size / exportRun.seconds)} | ${int(exportRun.peakRssMb)} MB | – | – | ${(statSync(exported).size / 1e6).toFixed(1)} MB |`);
  console.error(`  storage export: ${f1(exportRun.seconds)} s wall, ${f1(exportRun.cpuSeconds)} s CPU, ${int(exportRun.peakRssMb)} MB${exportRun.detail ? ` ${exportRun.detail}` : ''}`);
  rmSync(exported, { force: true });

  const prosody = await startBenchProsody(prosodyDir, `max_archive_query_results = ${SERVER_MAX}`);
  try {
    const pid = prosody.pid;
    for (const pageSize of PULL_PAGE_SIZES) {
      const pulled = join(dir, `pull-${pageSize}.xml`);
      const env = {
        XPORTA_DATA_DIR: join(dir, 'pull-state'),
        XPORTA_LOG_LEVEL: 'warn',
        XPORTA_OUTGOING: JSON.stringify({ allow: ['127.0.0.0/8'] }),
        XPORTA_XMPP_CLIENT: JSON.stringify({ pageSize, timeoutMs: 120_000 }),
      };
      const before = processCpuSeconds(pid);
      const run = timedCli([...xporta, 'pull', JID, '--password-file', passwordFile, '--ca-file', certs.ca, '--server', `127.0.0.1:${prosody.c2sPort}`], env, pulled);
      const serverCpu = processCpuSeconds(pid) - before;
      const messages = run.ok ? countResults(pulled) : 0;
      const bytes = run.ok ? statSync(pulled).size : 0;
      rmSync(pulled, { force: true });
      const pages = Math.ceil(size / pageSize);
      const rtt = await pageRoundTrip(prosody, certs.ca, pageSize, 11);
      const status = run.ok ? (messages === size ? '' : ` (${int(messages)} of ${int(size)} messages)`) : ` failed: ${run.detail ?? ''}`;
      rows.push(
        `| xporta pull ← Prosody 0.12 (c2s, STARTTLS)${status} | ${pageSize} | ${f1(run.seconds)} s | ${f1(run.cpuSeconds)} s | ${int(size / run.cpuSeconds)} | ${int(size / run.seconds)} | ${int(run.peakRssMb)} MB | ${f1(serverCpu)} s | ${f1((run.seconds * 1000) / pages)} ms (${int(pages)} pages); one page alone ${f1(rtt)} ms | ${(bytes / 1e6).toFixed(1)} MB |`,
      );
      console.error(`  pull page ${pageSize}: ${f1(run.seconds)} s wall, ${f1(run.cpuSeconds)} s CPU, Prosody ${f1(serverCpu)} s CPU, ${int(run.peakRssMb)} MB, ${int(messages)} messages, page RTT ${f1(rtt)} ms${run.detail ? ` ${run.detail}` : ''}`);
    }
  } finally {
    await prosody.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return [
    SECTION,
    '',
    `- run ${new Date().toISOString()}, ${size.toLocaleString('en')} archived messages of the bench account (bench/synthetic.ts), written by \`xporta import\` into Prosody's SQLite schema, then served by Prosody 0.12 from that file with \`max_archive_query_results = ${SERVER_MAX}\` (0.12's default is 50); \`npm run bench -- --only pull --sizes ${size}\``,
    `- \`xporta pull\` in a child process under GNU time, document to a file; Prosody's CPU from /proc/<pid>/stat over the same interval; "per page" = the pull's wall time / pages; "one page alone" = the median of 11 MAM page requests from the bench process on its own session (request to <fin>); load average at the end ${load}`,
    '',
    '| step | page size | wall | xporta CPU | msg per CPU-s | msg/s (wall) | peak RSS | Prosody CPU | per page | output |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
    ...rows,
  ];
}

/** `results` with the pull section replaced, or appended when it has none. */
export function withPullSection(results: string, section: readonly string[]): string {
  const start = results.indexOf(`${SECTION}\n`);
  if (start < 0) return `${results.trimEnd()}\n\n${section.join('\n')}\n`;
  const next = results.indexOf('\n## ', start + 1);
  return `${results.slice(0, start)}${section.join('\n')}\n${next < 0 ? '' : results.slice(next + 1)}`;
}
