/**
 * Exports as downloadable files over a listening socket, against a real Prosody SQLite store of
 * 20,000 archived messages (some MB, far more than socket buffers hold): a download cut halfway
 * and resumed with Range joins to the same bytes as a full one; HEAD, validators, 416, expiry,
 * deletion and who may fetch.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.js';
import { ExportFiles } from '../../src/core/export-files.js';
import { attachmentDisposition, parseRange } from '../../src/http/download.js';
import { buildApp } from '../../src/http/server.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import { openStorage } from '../../src/storage/open.js';

const MESSAGES = 20_000;
const ALL = 'downloads-operator-all';
const OTHER_HOST = 'downloads-operator-other-host';

function fillArchive(database: string, count: number): void {
  const db = new Database(database);
  db.prepare("INSERT INTO prosody (host, user, store, key, type, value) VALUES ('localhost', 'alice', 'accounts', 'password', 'string', 'pw')").run();
  db.prepare("INSERT INTO prosody (host, user, store, key, type, value) VALUES ('localhost', 'jürgen', 'accounts', 'password', 'string', 'pw')").run();
  const insert = db.prepare(
    "INSERT INTO prosodyarchive (host, user, store, key, \"when\", \"with\", type, value) VALUES ('localhost', 'alice', 'archive', ?, ?, ?, 'xml', ?)",
  );
  db.transaction(() => {
    for (let i = 0; i < count; i++) {
      const peer = `contact${i % 500}@example.net`;
      const stanza = `<message xml:lang='en' from='${peer}/laptop' to='alice@localhost' type='chat' id='m${i}'><body>Message ${i}: Grüße 🎉 &amp; &lt;3</body></message>`;
      insert.run(`k-${i.toString(36)}`, 1_700_000_000 + i, peer, stanza);
    }
  })();
  db.close();
}

async function body(res: Awaited<ReturnType<typeof request>>): Promise<Buffer> {
  return Buffer.from(await res.body.arrayBuffer());
}

describe('downloadable exports', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-downloads-'));
  let config: Config;
  let app: ReturnType<typeof buildApp>;
  let base: string;
  const auth = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

  beforeAll(async () => {
    config = loadConfig({
      env: {
        XPORTA_DATA_DIR: dir,
        XPORTA_LOG_LEVEL: 'silent',
        XPORTA_HOSTS: JSON.stringify({ localhost: {}, 'example.org': {} }),
        XPORTA_AUTH__USER_TOKEN_SECRET: 'u'.repeat(40),
        XPORTA_AUTH__TOKENS: JSON.stringify([
          { name: 'all', sha256: sha256Hex(ALL), hosts: ['*'] },
          { name: 'other', sha256: sha256Hex(OTHER_HOST), hosts: ['example.org'] },
        ]),
      },
      cwd: dir,
    });
    const storage = await openStorage(config);
    await storage.close();
    fillArchive(join(dir, 'prosody.sqlite'), MESSAGES);
    app = buildApp({ config, storage: await openStorage(config), logger: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }, 60_000);

  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  let location = '';
  let full: Buffer;
  let etag = '';

  it('writes a snapshot once and serves it with Content-Length and a strong ETag', async () => {
    const created = await request(`${base}/v1/users/alice%40localhost/exports`, { method: 'POST', headers: auth(ALL) });
    expect(created.statusCode).toBe(201);
    const meta = (await created.body.json()) as { id: string; size: number; etag: string; jid: string; expiresAt: string; url: string };
    location = String(created.headers.location);
    expect(location).toBe(`/v1/exports/${meta.id}`);
    expect(meta.jid).toBe('alice@localhost');
    expect(meta.url.endsWith(location)).toBe(true);
    expect(statSync(join(dir, 'exports', `${meta.id}.xml`)).mode & 0o777).toBe(0o600);

    const res = await request(`${base}${location}`, { headers: auth(ALL) });
    expect(res.statusCode).toBe(200);
    full = await body(res);
    etag = String(res.headers.etag);
    expect(etag).toBe(meta.etag);
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(Number(res.headers['content-length'])).toBe(full.length);
    expect(full.length).toBe(meta.size);
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(res.headers['content-disposition']).toBe(`attachment; filename="alice@localhost.xml"; filename*=UTF-8''alice%40localhost.xml`);
    expect(full.toString('utf8').split('<result ').length - 1).toBe(MESSAGES);

    // The snapshot holds what the streamed export (still the default) sends.
    const streamed = await request(`${base}/v1/users/alice%40localhost/export`, { headers: auth(ALL) });
    expect((await body(streamed)).equals(full)).toBe(true);
  }, 60_000);

  it('resumes a download cut halfway with Range and If-Range; the joined file is byte-identical', async () => {
    const half = Math.floor(full.length / 2);
    const first = await request(`${base}${location}`, { headers: auth(ALL) });
    const received: Buffer[] = [];
    let got = 0;
    for await (const chunk of first.body) {
      received.push(chunk as Buffer);
      got += (chunk as Buffer).length;
      if (got >= half) break; // leaving the loop drops the connection mid-body
    }
    const head = Buffer.concat(received);
    expect(head.length).toBeLessThan(full.length);

    const rest = await request(`${base}${location}`, { headers: { ...auth(ALL), range: `bytes=${head.length}-`, 'if-range': etag } });
    expect(rest.statusCode).toBe(206);
    expect(rest.headers['content-range']).toBe(`bytes ${head.length}-${full.length - 1}/${full.length}`);
    expect(Number(rest.headers['content-length'])).toBe(full.length - head.length);
    const joined = Buffer.concat([head, await body(rest)]);
    expect(joined.equals(full)).toBe(true);
  }, 60_000);

  it('answers HEAD, closed and suffix ranges, stale If-Range, If-None-Match and 416', async () => {
    const head = await request(`${base}${location}`, { method: 'HEAD', headers: auth(ALL) });
    expect(head.statusCode).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(full.length);
    expect(head.headers.etag).toBe(etag);
    expect((await body(head)).length).toBe(0);

    const middle = await request(`${base}${location}`, { headers: { ...auth(ALL), range: 'bytes=100-199' } });
    expect(middle.statusCode).toBe(206);
    expect((await body(middle)).equals(full.subarray(100, 200))).toBe(true);

    const suffix = await request(`${base}${location}`, { headers: { ...auth(ALL), range: 'bytes=-50' } });
    expect(suffix.statusCode).toBe(206);
    expect((await body(suffix)).equals(full.subarray(full.length - 50))).toBe(true);

    const stale = await request(`${base}${location}`, { headers: { ...auth(ALL), range: 'bytes=100-', 'if-range': '"another-version"' } });
    expect(stale.statusCode).toBe(200);
    expect((await body(stale)).length).toBe(full.length);

    const cached = await request(`${base}${location}`, { headers: { ...auth(ALL), 'if-none-match': etag } });
    expect(cached.statusCode).toBe(304);
    await body(cached);

    const beyond = await request(`${base}${location}`, { headers: { ...auth(ALL), range: `bytes=${full.length}-` } });
    expect(beyond.statusCode).toBe(416);
    expect(beyond.headers['content-range']).toBe(`bytes */${full.length}`);
    expect(beyond.headers['content-type']).toMatch(/^application\/problem\+json/);
    await body(beyond);
  });

  it('is served only to whoever may export that account', async () => {
    const other = await request(`${base}${location}`, { headers: auth(OTHER_HOST) });
    expect(other.statusCode).toBe(404);
    await body(other);
    const anonymous = await request(`${base}${location}`);
    expect(anonymous.statusCode).toBe(401);
    await body(anonymous);

    const mint = async (jid: string): Promise<string> => {
      const res = await request(`${base}/v1/users/${encodeURIComponent(jid)}/tokens`, {
        method: 'POST',
        headers: { ...auth(ALL), 'content-type': 'application/json' },
        body: JSON.stringify({ scopes: ['export'], ttlSeconds: 600 }),
      });
      expect(res.statusCode).toBe(201);
      return ((await res.body.json()) as { token: string }).token;
    };
    const own = await request(`${base}${location}`, { method: 'HEAD', headers: auth(await mint('alice@localhost')) });
    expect(own.statusCode).toBe(200);
    await body(own);
    const someoneElse = await request(`${base}${location}`, { method: 'HEAD', headers: auth(await mint('jürgen@localhost')) });
    expect(someoneElse.statusCode).toBe(404);
    await body(someoneElse);
  });

  it('a HEAD of the streamed export reads nothing from storage', async () => {
    const exported = async (): Promise<string> => /xporta_operation_duration_seconds_count\{operation="export",outcome="ok"\} (\d+)/.exec(await app.ctx.metrics.render())?.[1] ?? '0';
    const before = await exported();
    const head = await request(`${base}/v1/users/alice%40localhost/export`, { method: 'HEAD', headers: auth(ALL) });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-disposition']).toContain("filename*=UTF-8''alice%40localhost.xml");
    await body(head);
    expect(await exported()).toBe(before);
    expect(/xporta_records_total\{direction="export",kind="archive"\} (\d+)/.exec(await app.ctx.metrics.render())?.[1]).toBe(String(2 * MESSAGES));
  });

  it('names a non-ASCII account with filename* and an ASCII fallback, streamed or as a file', async () => {
    const streamed = await request(`${base}/v1/users/j%C3%BCrgen%40localhost/export`, { method: 'HEAD', headers: auth(ALL) });
    expect(streamed.statusCode).toBe(200);
    expect(streamed.headers['content-disposition']).toBe(`attachment; filename="j_rgen@localhost.xml"; filename*=UTF-8''j%C3%BCrgen%40localhost.xml`);
    await body(streamed);
    const created = await request(`${base}/v1/users/j%C3%BCrgen%40localhost/exports?include=roster`, { method: 'POST', headers: auth(ALL) });
    expect(created.statusCode).toBe(201);
    const { id } = (await created.body.json()) as { id: string };
    const host = await request(`${base}/v1/hosts/localhost/export?include=roster`, { headers: auth(ALL) });
    expect(host.headers['content-disposition']).toBe(`attachment; filename="localhost.xml"; filename*=UTF-8''localhost.xml`);
    await body(host);
    const file = await request(`${base}/v1/exports/${id}`, { method: 'HEAD', headers: auth(ALL) });
    expect(file.headers['content-disposition']).toContain(`filename*=UTF-8''j%C3%BCrgen%40localhost.xml`);
    await body(file);
  });

  it('audits creation, downloads and deletion with the export id', async () => {
    const id = location.split('/').pop() ?? '';
    app.ctx.audit.flush();
    const lines = readFileSync(join(dir, 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; target?: string; account?: string; outcome: string });
    expect(lines.find((l) => l.action === 'export-file-create' && l.target === id)).toMatchObject({ account: 'alice@localhost', outcome: 'ok' });
    expect(lines.filter((l) => l.action === 'export-file-download' && l.target === id && l.outcome === 'ok').length).toBeGreaterThanOrEqual(3);
  });

  it('DELETE removes the export and its file', async () => {
    const id = location.split('/').pop() ?? '';
    const gone = await request(`${base}${location}`, { method: 'DELETE', headers: auth(ALL) });
    expect(gone.statusCode).toBe(204);
    await body(gone);
    expect(readdirSync(join(dir, 'exports')).filter((name) => name.startsWith(id))).toEqual([]);
    const again = await request(`${base}${location}`, { headers: auth(ALL) });
    expect(again.statusCode).toBe(404);
    await body(again);
  });
});

describe('export files expire', () => {
  it('after ttlSeconds: get() no longer finds them and sweep() removes their files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xporta-expiry-'));
    let now = 1_800_000_000_000;
    const files = new ExportFiles(dir, 0o600, 60, () => now);
    async function* doc(): AsyncGenerator<Buffer> {
      yield Buffer.from('<x/>');
    }
    const a = await files.create('a@localhost', ['roster'], doc());
    const b = await files.create('b@localhost', ['roster'], doc());
    expect(files.get(a.id)?.size).toBe(4);
    now += 61_000;
    expect(files.get(a.id)).toBeUndefined();
    expect(files.sweep()).toBe(1);
    expect(files.get(b.id)).toBeUndefined();
    expect(readdirSync(dir)).toEqual([]);
    expect(files.get('../../etc/passwd')).toBeUndefined();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('download helpers', () => {
  it('attachmentDisposition escapes what RFC 8187 and RFC 6266 need', () => {
    expect(attachmentDisposition(`o'brien (x)*@ex.org.xml`)).toBe(`attachment; filename="o'brien (x)*@ex.org.xml"; filename*=UTF-8''o%27brien%20%28x%29%2A%40ex.org.xml`);
    expect(attachmentDisposition('日本@例え.jp.xml')).toMatch(/^attachment; filename="__@__\.jp\.xml"; filename\*=UTF-8''%E6%97%A5%E6%9C%AC%40/);
    expect(attachmentDisposition('a"b\\c.xml')).toContain('filename="a_b_c.xml"');
  });

  it('parseRange takes one byte range and ignores what it may ignore', () => {
    expect(parseRange(undefined, 10)).toBeUndefined();
    expect(parseRange('bytes=0-4', 10)).toEqual({ start: 0, end: 4 });
    expect(parseRange('bytes=5-', 10)).toEqual({ start: 5, end: 9 });
    expect(parseRange('bytes=5-100', 10)).toEqual({ start: 5, end: 9 });
    expect(parseRange('bytes=-3', 10)).toEqual({ start: 7, end: 9 });
    expect(parseRange('bytes=-30', 10)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=10-', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-1,3-4', 10)).toBeUndefined();
    expect(parseRange('items=0-1', 10)).toBeUndefined();
    expect(parseRange('bytes=4-2', 10)).toBeUndefined();
  });
});
