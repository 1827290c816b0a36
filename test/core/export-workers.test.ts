/**
 * Streamed exports on worker threads (src/core/export-workers.ts) over a real Prosody-format
 * SQLite store in WAL mode: the same bytes and record counts as an export on this thread, gzip,
 * errors before the first byte, backpressure (a worker sends only against credit), one snapshot
 * per export while an import commits meanwhile, cancellation, and the HTTP route through them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import { accountExportStream } from '../../src/core/export-stream.js';
import type { ExportWorkers } from '../../src/core/export-workers.js';
import { Metrics } from '../../src/core/metrics.js';
import { buildApp } from '../../src/http/server.js';
import { StorageError, type StorageBackend } from '../../src/storage/backend.js';
import { openStorage } from '../../src/storage/open.js';
import { selectKinds } from '../../src/transfer/account-transfer.js';
import { WRITER_CHUNK_BYTES } from '../../src/xep0227/writer.js';
import { aliceDocument as doc, applyAlice as apply, bytesOf, testExportWorkers } from '../support/export-workers.js';

const ref = { host: 'localhost', user: 'alice' };
const ALL = selectKinds();
const TOKEN = 'operator-secret';

function recordsCounted(metrics: Metrics): Promise<string> {
  return metrics.render().then((text) => text.split('\n').filter((l) => l.startsWith('xporta_records_total{direction="export"')).sort().join('\n'));
}

describe('streamed exports on worker threads (SQLite, WAL)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-export-workers-'));
  let config: Config;
  let storage: StorageBackend;
  let workers: ExportWorkers;

  beforeAll(async () => {
    config = loadConfig({
      env: {
        XPORTA_DATA_DIR: dir,
        XPORTA_LOG_LEVEL: 'silent',
        XPORTA_HOSTS: JSON.stringify({ localhost: { passwordHash: 'SHA-1' } }),
        XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'sqlite', database: join(dir, 'prosody.sqlite'), journalMode: 'wal' }),
        XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'all', sha256: sha256Hex(TOKEN), scopes: ['export', 'import', 'admin'], hosts: ['*'] }]),
      },
      cwd: dir,
    });
    storage = await openStorage(config);
    await apply(storage, doc('Old Name', 3000));
    workers = testExportWorkers(config);
  }, 60_000);

  afterAll(async () => {
    await workers?.close();
    await storage?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives the bytes and record counts of an export on this thread, plain and gzip-encoded', async () => {
    const inThread = new Metrics();
    const onWorker = new Metrics();
    const signal = new AbortController().signal;
    const expected = await bytesOf(accountExportStream({ storage, metrics: inThread }, ref, ALL, { gzip: false, signal }));
    const got = await bytesOf(accountExportStream({ storage, metrics: onWorker, exportWorkers: workers }, ref, ALL, { gzip: false, signal }));
    expect(got.length).toBeGreaterThan(WRITER_CHUNK_BYTES * 4);
    expect(got.equals(expected)).toBe(true);
    expect(await recordsCounted(onWorker)).toBe(await recordsCounted(inThread));
    const gzipped = await bytesOf(accountExportStream({ storage, metrics: onWorker, exportWorkers: workers }, ref, ALL, { gzip: true, signal }));
    expect(gunzipSync(gzipped).equals(expected)).toBe(true);
  });

  it('fails an export of a missing account before its first byte, with the storage error the service maps', async () => {
    const stream = workers.export({ host: 'localhost', user: 'nobody' }, ALL, { metrics: new Metrics() });
    let bytes = 0;
    const failure = await (async () => {
      try {
        for await (const chunk of stream) bytes += (chunk as Buffer).length;
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(bytes).toBe(0);
    expect(failure).toBeInstanceOf(StorageError);
    expect((failure as StorageError).code).toBe('user-not-found');
  });

  it('sends no more than its credit while nobody reads, and reads one snapshot while an import commits meanwhile', async () => {
    const stream = workers.export(ref, ALL, { metrics: new Metrics() });
    await sleep(500);
    // The window (8 chunks) beyond the stream's own buffer, no more, although the document is larger.
    expect(stream.readableLength).toBeGreaterThan(0);
    expect(stream.readableLength).toBeLessThanOrEqual(WRITER_CHUNK_BYTES * 9);
    await apply(storage, doc('New Name', 2000));
    const text = (await bytesOf(stream)).toString('utf8');
    expect(text).toContain('<FN>Old Name</FN>');
    expect(text.match(/<result /g)?.length).toBe(3000);
    const next = (await bytesOf(workers.export(ref, ALL, { metrics: new Metrics() }))).toString('utf8');
    expect(next).toContain('<FN>New Name</FN>');
    expect(next.match(/<result /g)?.length).toBe(2000);
  });

  it('stops a worker export when its stream is destroyed, or when the signal aborts', async () => {
    const first = workers.export(ref, ALL, { metrics: new Metrics() });
    await new Promise((resolve) => first.once('readable', resolve));
    first.destroy();
    const abort = new AbortController();
    const second = workers.export(ref, ALL, { metrics: new Metrics(), signal: abort.signal });
    await new Promise((resolve) => second.once('readable', resolve));
    abort.abort();
    await new Promise((resolve) => second.once('close', resolve));
    expect(second.destroyed).toBe(true);
    // The workers go on serving exports.
    expect((await bytesOf(workers.export(ref, ALL, { metrics: new Metrics() }))).toString('utf8')).toContain('</server-data>');
  });

  it('as xporta serve starts them: a lone export on the service thread, concurrent ones spread over it and the workers', async () => {
    const served = testExportWorkers(config, 1, 'serve');
    try {
      const signal = new AbortController().signal;
      const expected = await bytesOf(accountExportStream({ storage, metrics: new Metrics() }, ref, ALL, { gzip: false, signal }));
      const exporter = { storage, metrics: new Metrics(), exportWorkers: served };
      const first = accountExportStream(exporter, ref, ALL, { gzip: false, signal });
      expect(served.onWorkers).toBe(0);
      const second = accountExportStream(exporter, ref, ALL, { gzip: false, signal });
      expect(served.onWorkers).toBe(1);
      // The pool is full and its worker runs as many as the service's thread: that thread again.
      const third0 = accountExportStream(exporter, ref, ALL, { gzip: false, signal });
      expect(served.onWorkers).toBe(1);
      const fourth0 = accountExportStream(exporter, ref, ALL, { gzip: false, signal });
      expect(served.onWorkers).toBe(2);
      const all = await Promise.all([first, second, third0, fourth0].map((stream) => bytesOf(stream)));
      expect(all.every((bytes) => bytes.equals(expected))).toBe(true);
      expect(served.onWorkers).toBe(0);
      // The first one's end gave the service thread back: the next export takes it.
      const third = accountExportStream(exporter, ref, ALL, { gzip: true, signal });
      expect(served.onWorkers).toBe(0);
      const fourth = accountExportStream(exporter, ref, ALL, { gzip: false, signal });
      expect(served.onWorkers).toBe(1);
      fourth.destroy();
      await bytesOf(third);
      // The cancelled worker export is forgotten once the worker has stopped it.
      for (let waited = 0; served.onWorkers > 0 && waited < 5000; waited += 20) await sleep(20);
      expect(served.onWorkers).toBe(0);
      const fifth = accountExportStream(exporter, ref, ALL, { gzip: false, signal });
      expect(served.onWorkers).toBe(0);
      expect((await bytesOf(fifth)).equals(expected)).toBe(true);
    } finally {
      await served.close();
    }
  });

  it('fails an export whose worker goes away after its first bytes (the response is then cut)', async () => {
    const own = testExportWorkers(config, 1);
    const stream = own.export(ref, ALL, { metrics: new Metrics() });
    await new Promise((resolve) => stream.once('readable', resolve));
    const failed = new Promise<unknown>((resolve) => stream.once('error', resolve));
    await own.close();
    expect(await failed).toBeInstanceOf(Error);
    expect(() => own.export(ref, ALL, { metrics: new Metrics() })).toThrow(/closed/);
  });

  it('serves GET …/export through the workers: the document, a 404 problem for a missing account, and a release on disconnect', async () => {
    const own = testExportWorkers(config, 1);
    const app = buildApp({ config, storage: await openStorage(config), logger: false, exportWorkers: own });
    try {
      const auth = { authorization: `Bearer ${TOKEN}` };
      const expected = await bytesOf(accountExportStream({ storage, metrics: new Metrics() }, ref, ALL, { gzip: false, signal: new AbortController().signal }));
      const ok = await app.inject({ method: 'GET', url: '/v1/users/alice@localhost/export', headers: auth });
      expect(ok.statusCode).toBe(200);
      expect(ok.rawPayload.equals(expected)).toBe(true);
      const missing = await app.inject({ method: 'GET', url: '/v1/users/nobody@localhost/export', headers: auth });
      expect(missing.statusCode).toBe(404);
      expect(missing.headers['content-type']).toContain('application/problem+json');
      // A client that leaves mid-way releases the account: an import into it runs at once.
      await app.listen({ host: '127.0.0.1', port: 0 });
      const address = app.server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const leaving = new AbortController();
      const res = await fetch(`http://127.0.0.1:${port}/v1/users/alice@localhost/export`, { headers: auth, signal: leaving.signal });
      const reader = res.body?.getReader();
      await reader?.read();
      leaving.abort();
      await sleep(200);
      const put = await fetch(`http://127.0.0.1:${port}/v1/users/alice@localhost/import?mode=replace`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/xml' },
        body: doc('Third Name', 10),
      });
      expect(put.status).toBe(200);
    } finally {
      await app.close();
    }
  });
});
