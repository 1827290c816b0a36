/**
 * A million archived messages over HTTP: the service (its own process) streams them with bounded
 * memory, and a client that disconnects stops the database read. Figures are printed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openStorage } from '../../src/storage/open.js';
import { freePort } from '../support/ports.js';
import { REPO_ROOT } from '../support/paths.js';

const MESSAGES = 1_000_000;
const root = REPO_ROOT;
const cli = join(root, 'dist', 'cli.js');
const TOKEN = 'scale-test-operator-token';

/** Rows exactly as Prosody's mod_mam writes them (see the storage reference). */
function fillArchive(database: string, count: number): void {
  const db = new Database(database);
  db.pragma('journal_mode = WAL');
  db.prepare("INSERT INTO prosody (host, user, store, key, type, value) VALUES ('localhost', 'alice', 'accounts', 'password', 'string', 'pw')").run();
  const insert = db.prepare(
    "INSERT INTO prosodyarchive (host, user, store, key, \"when\", \"with\", type, value) VALUES ('localhost', 'alice', 'archive', ?, ?, ?, 'xml', ?)",
  );
  const fill = db.transaction(() => {
    for (let i = 0; i < count; i++) {
      const out = i % 2 === 0;
      const peer = `contact${i % 500}@example.net`;
      const body = `Message ${i}: ${'lorem ipsum dolor sit amet '.repeat(1 + (i % 5))}Grüße 🎉 &amp; &lt;3`;
      const stanza = out
        ? `<message xml:lang='en' from='alice@localhost/phone' to='${peer}' type='chat' id='m${i}'><body>${body}</body><origin-id id='o${i}' xmlns='urn:xmpp:sid:0'/></message>`
        : `<message xml:lang='en' from='${peer}/laptop' to='alice@localhost' type='chat' id='m${i}'><body>${body}</body></message>`;
      insert.run(`k-${i.toString(36)}`, 1_700_000_000 + i, peer, stanza);
    }
  });
  fill();
  db.pragma('journal_mode = DELETE');
  db.close();
}

function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
  return kb / 1024;
}

async function exportedArchiveRecords(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const match = /xporta_records_total\{direction="export",kind="archive"\} (\d+)/.exec(await res.text());
  return Number(match?.[1] ?? 0);
}

describe(`export of ${MESSAGES.toLocaleString('en')} archived messages over HTTP`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-scale-'));
  let service: ChildProcess;
  let port: number;

  beforeAll(async () => {
    if (!existsSync(cli)) spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
    const config = loadConfig({ env: { XPORTA_DATA_DIR: dir }, cwd: dir });
    const storage = await openStorage(config);
    await storage.close();
    const started = Date.now();
    fillArchive(join(dir, 'prosody.sqlite'), MESSAGES);
    console.log(`filled ${MESSAGES} archive rows in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    port = await freePort();
    service = spawn(process.execPath, [cli, 'serve'], {
      cwd: dir,
      env: { PATH: process.env.PATH, NODE_OPTIONS: process.env.SCALE_NODE_OPTIONS ?? '', XPORTA_DATA_DIR: dir, XPORTA_LISTEN__PORT: String(port), XPORTA_OPERATOR_TOKEN: TOKEN, XPORTA_LOG_LEVEL: 'warn' },
      stdio: 'inherit',
    });
    for (let i = 0; i < 200; i++) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }, 300_000);

  afterAll(() => {
    service.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams every message while the service stays under 200 MB RSS', async () => {
    const started = Date.now();
    const res = await request(`http://127.0.0.1:${port}/v1/users/alice%40localhost/export`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.statusCode).toBe(200);
    let bytes = 0;
    let results = 0;
    let carry = '';
    for await (const chunk of res.body) {
      bytes += (chunk as Buffer).length;
      // Count result elements across chunk boundaries without holding the document.
      const text = carry + (chunk as Buffer).toString('latin1');
      results += text.split('<result ').length - 1;
      carry = text.slice(-8);
      results -= carry.split('<result ').length - 1;
    }
    results += carry.split('<result ').length - 1;
    const seconds = (Date.now() - started) / 1000;
    const rss = peakRssMb(service.pid!);
    console.log(
      `exported ${results} messages, ${(bytes / 1e6).toFixed(0)} MB in ${seconds.toFixed(1)} s ` +
        `(${Math.round(results / seconds)} msg/s, ${(bytes / 1e6 / seconds).toFixed(1)} MB/s); service peak RSS ${rss.toFixed(0)} MB`,
    );
    expect(results).toBe(MESSAGES);
    expect(rss).toBeLessThan(200);
    expect(await exportedArchiveRecords(port)).toBe(MESSAGES);
  }, 600_000);

  it('stops reading the database when the client disconnects', async () => {
    const before = await exportedArchiveRecords(port);
    const res = await request(`http://127.0.0.1:${port}/v1/users/alice%40localhost/export`, { headers: { authorization: `Bearer ${TOKEN}` } });
    let bytes = 0;
    for await (const chunk of res.body) {
      bytes += (chunk as Buffer).length;
      if (bytes > 2_000_000) break; // leaving the loop destroys the body: the client hangs up
    }
    await new Promise((r) => setTimeout(r, 500));
    const atStop = (await exportedArchiveRecords(port)) - before;
    await new Promise((r) => setTimeout(r, 1500));
    const later = (await exportedArchiveRecords(port)) - before;
    console.log(`after disconnecting at ${bytes} bytes the service had read ${atStop} messages, ${later} after another 1.5 s`);
    expect(later).toBe(atStop);
    expect(later).toBeLessThan(MESSAGES / 10);
  }, 120_000);
});
