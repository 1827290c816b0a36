/**
 * The HTTP edge against a real Prosody-format SQLite store: authentication before any body byte,
 * small bodies everywhere but the uploads, deadlines for slow clients, and problem+json for every
 * fault of a request. The flood test, which runs
 * the service in its own process, is in edge-flood.live.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.js';
import type { ServiceContext } from '../../src/core/context.js';
import { MAX_PARAM_LENGTH } from '../../src/http/edge.js';
import { buildApp } from '../../src/http/server.js';
import { openStorage } from '../../src/storage/open.js';
import { accountDocument } from '../support/documents.js';
import { floodRequest, trickleRequest, type RawAnswer } from '../support/raw-http.js';
import { ALL, EXPORT_ONLY, PROBLEM, auth, envFor, xml } from '../support/http-edge.js';

type App = FastifyInstance & { ctx: ServiceContext };

function configFor(dir: string, extra: Record<string, string> = {}): Config {
  return loadConfig({ env: envFor(dir, extra), cwd: dir });
}

async function makeApp(dir: string, extra: Record<string, string> = {}): Promise<App> {
  const config = configFor(dir, extra);
  const app = buildApp({ config, storage: await openStorage(config), logger: false }) as unknown as App;
  await app.ready();
  return app;
}


function expectProblem(res: { statusCode: number; headers: Record<string, unknown>; body: string }, status: number): Record<string, unknown> {
  expect(res.statusCode, res.body).toBe(status);
  expect(String(res.headers['content-type'])).toContain(PROBLEM);
  const body = JSON.parse(res.body) as Record<string, unknown>;
  expect(body.status).toBe(status);
  return body;
}

/** A multipart body around `file`; `end: false` cuts it off before its closing boundary. */
function multipart(file: string | Buffer, options: { boundary?: string; end?: boolean } = {}): { payload: Buffer; type: string } {
  const boundary = options.boundary ?? 'xporta-edge-boundary';
  const parts = [
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="alice.xml"\r\nContent-Type: application/xml\r\n\r\n`),
    typeof file === 'string' ? Buffer.from(file) : file,
    Buffer.from(options.end === false ? '' : `\r\n--${boundary}--\r\n`),
  ];
  return { payload: Buffer.concat(parts), type: `multipart/form-data; boundary=${boundary}` };
}

describe('the HTTP error contract', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-edge-'));
  const doc = accountDocument({ host: 'localhost', user: 'alice', password: 'edge password' });
  let app: App;
  let exported: string;

  const exportAlice = async (): Promise<string> => {
    const res = await app.inject({ method: 'GET', url: '/v1/users/alice%40localhost/export', headers: auth(ALL) });
    expect(res.statusCode).toBe(200);
    return res.body;
  };

  beforeAll(async () => {
    app = await makeApp(dir, { XPORTA_LIMITS__MAX_UPLOAD_BYTES: String(32 * 1024), XPORTA_LIMITS__MAX_JSON_BODY_BYTES: '4096' });
    const created = await app.inject({ method: 'PUT', url: '/v1/users/alice%40localhost/import?createAccount=true', headers: { ...auth(ALL), ...xml }, payload: doc });
    expect(created.statusCode, created.body).toBe(200);
    exported = await exportAlice();
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('uploads', () => {
    const put = (payload: string | Buffer, headers: Record<string, string>, jid = 'alice%40localhost') =>
      app.inject({ method: 'PUT', url: `/v1/users/${jid}/import?mode=merge`, headers: { ...auth(ALL), ...headers }, payload });

    it('400 for corrupt, truncated and mislabelled gzip, and the account is unchanged', async () => {
      const gz = gzipSync(Buffer.from(doc));
      const corrupt = Buffer.from(gz);
      corrupt.fill(0x55, 20, 60);
      for (const payload of [corrupt, gz.subarray(0, Math.floor(gz.length / 2)), Buffer.from(doc)]) {
        const body = expectProblem(await put(payload, { ...xml, 'content-encoding': 'gzip' }), 400);
        expect(String(body.detail)).toMatch(/gzip/);
      }
      expect(await exportAlice()).toBe(exported);
    });

    it('400 for a multipart body without its boundary or cut short; 413 for a file over the limit', async () => {
      const full = multipart(doc);
      expectProblem(await put(full.payload, { 'content-type': 'multipart/form-data' }), 400);
      const cut = multipart(doc.slice(0, 600), { end: false });
      expectProblem(await put(cut.payload, { 'content-type': cut.type }), 400);
      const big = accountDocument({ host: 'localhost', user: 'alice', password: 'other', archiveCount: 200 });
      expect(big.length).toBeGreaterThan(32 * 1024);
      const over = multipart(big);
      const body = expectProblem(await put(over.payload, { 'content-type': over.type }), 413);
      expect(String(body.detail)).not.toMatch(/unclosed/);
      expect(await exportAlice()).toBe(exported);
      // The same multipart route still takes a file within the limit.
      const ok = multipart(doc);
      expect((await put(ok.payload, { 'content-type': ok.type })).statusCode).toBe(200);
    });

    it('408 for an upload that stalls, and the slot and lock are free at once', async () => {
      const slow = await makeApp(mkdtempSync(join(tmpdir(), 'xporta-edge-slow-')), { XPORTA_LIMITS__UPLOAD_IDLE_TIMEOUT_MS: '200' });
      try {
        const body = new PassThrough();
        body.write(doc.slice(0, 300));
        const res = await slow.inject({ method: 'PUT', url: '/v1/users/alice%40localhost/import?createAccount=true', headers: { ...auth(ALL), ...xml }, payload: body });
        expectProblem(res, 408);
        expect(slow.ctx.importSlots.inUse).toBe(0);
        expect(slow.ctx.locks.isBusy('alice@localhost')).toBe(false);
        expect((await slow.inject({ method: 'GET', url: '/v1/users/alice%40localhost/export', headers: auth(ALL) })).statusCode).toBe(404);
      } finally {
        await slow.close();
      }
    });
  });

  // These two wait out deadlines on services of their own; side by side, their waits overlap.
  it.concurrent('408 for an upload that trickles past limits.requestTimeoutMs', async ({ expect }) => {
    const slow = await makeApp(mkdtempSync(join(tmpdir(), 'xporta-edge-total-')), {
      XPORTA_LIMITS__UPLOAD_IDLE_TIMEOUT_MS: '500',
      XPORTA_LIMITS__REQUEST_TIMEOUT_MS: '1000',
      XPORTA_LIMITS__HEADERS_TIMEOUT_MS: '1000',
    });
    const body = new PassThrough();
    let sent = 0;
    const timer = setInterval(() => body.write(doc[sent++] ?? ' '), 50);
    try {
      const res = await slow.inject({ method: 'PUT', url: '/v1/users/alice%40localhost/import?createAccount=true', headers: { ...auth(ALL), ...xml }, payload: body });
      expect(String(expectProblem(res, 408).detail)).toMatch(/longer than 1000 ms/);
      expect(slow.ctx.importSlots.inUse).toBe(0);
      expect((await slow.inject({ method: 'GET', url: '/v1/users/alice%40localhost/export', headers: auth(ALL) })).statusCode).toBe(404);
    } finally {
      clearInterval(timer);
      await slow.close();
    }
  });

  it.concurrent('a JSON body refused at its size limit leaves no deadline behind to fail later', async ({ expect }) => {
    const quick = await makeApp(mkdtempSync(join(tmpdir(), 'xporta-edge-quick-')), { XPORTA_LIMITS__BODY_TIMEOUT_MS: '100' });
    try {
      const headers = { ...auth(ALL), 'content-type': 'application/json' };
      const url = '/v1/users/alice%40localhost/tokens';
      // Refused on Content-Length, then read past the limit without one (and never ended).
      expectProblem(await quick.inject({ method: 'POST', url, headers, payload: 'x'.repeat(70 * 1024) }), 413);
      const unsized = new PassThrough();
      unsized.write(Buffer.alloc(70 * 1024, 0x20));
      expectProblem(await quick.inject({ method: 'POST', url, headers, payload: unsized }), 413);
      // Past the 100 ms body deadline: a timer left behind would raise an unhandled error here.
      await new Promise((r) => setTimeout(r, 300));
      expect((await quick.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    } finally {
      await quick.close();
    }
  });

  it('HEAD and GET of /health need no token; every other route does', async () => {
    expect((await app.inject({ method: 'HEAD', url: '/health' })).statusCode).toBe(200);
    expectProblem(await app.inject({ method: 'GET', url: '/metrics' }), 401);
    expectProblem(await app.inject({ method: 'GET', url: '/v1/jobs/nope' }), 401);
  });

  describe('JSON bodies', () => {
    const tokens = '/v1/users/alice%40localhost/tokens';

    it('400 for bad JSON, 415 for a type the route does not take, 413 over limits.maxJsonBodyBytes', async () => {
      expectProblem(await app.inject({ method: 'POST', url: tokens, headers: { ...auth(ALL), 'content-type': 'application/json' }, payload: '{"scopes": [' }), 400);
      expectProblem(await app.inject({ method: 'POST', url: tokens, headers: { ...auth(ALL), 'content-type': 'application/octet-stream' }, payload: 'x' }), 415);
      expectProblem(await app.inject({ method: 'POST', url: tokens, headers: { ...auth(ALL), ...xml }, payload: '<x/>' }), 415);
      const jsonUpload = { ...auth(ALL), 'content-type': 'application/json' };
      expectProblem(await app.inject({ method: 'PUT', url: '/v1/users/alice%40localhost/import', headers: jsonUpload, payload: '{}' }), 415);
      const { payload, type } = multipart('<x/>');
      expectProblem(await app.inject({ method: 'POST', url: tokens, headers: { ...auth(ALL), 'content-type': type }, payload }), 415);
      const big = JSON.stringify({ scopes: ['export'], pad: 'x'.repeat(5000) });
      const tooLarge = await app.inject({ method: 'POST', url: tokens, headers: { ...auth(ALL), 'content-type': 'application/json' }, payload: big });
      expectProblem(tooLarge, 413);
      expect(tooLarge.headers.connection).toBe('close');
    });

    it('401 and 403 come before the body limit, the body type and the route', async () => {
      const big = JSON.stringify({ pad: 'x'.repeat(5000) });
      expectProblem(await app.inject({ method: 'POST', url: tokens, headers: { 'content-type': 'application/json' }, payload: big }), 401);
      expectProblem(await app.inject({ method: 'POST', url: tokens, headers: { ...auth(EXPORT_ONLY), 'content-type': 'application/json' }, payload: big }), 403);
      expectProblem(await app.inject({ method: 'PUT', url: '/v1/users/alice%40localhost/import', headers: { ...auth(EXPORT_ONLY), 'content-type': 'text/plain' }, payload: big }), 403);
      expectProblem(await app.inject({ method: 'POST', url: '/v1/nowhere', headers: { 'content-type': 'text/plain' }, payload: big }), 404);
    });
  });

  describe('the request target', () => {
    it('a legal JID with a 1023-byte localpart is imported and exported', async () => {
      const local = 'ü'.repeat(511) + 'a'; // 1023 bytes of UTF-8
      const jid = `${local}@localhost`;
      const path = encodeURIComponent(jid);
      expect(path.length).toBeGreaterThan(3000);
      const account = accountDocument({ host: 'localhost', user: local, password: 'long' });
      const res = await app.inject({ method: 'PUT', url: `/v1/users/${path}/import?createAccount=true`, headers: { ...auth(ALL), ...xml }, payload: account });
      expect(res.statusCode, res.body).toBe(200);
      const back = await app.inject({ method: 'GET', url: `/v1/users/${path}/export`, headers: auth(ALL) });
      expect(back.statusCode).toBe(200);
      expect(back.body).toContain(`<user name='${local}'>`);
    });

    it('a 3,071-byte full JID reaches the route: 404 problem+json for its host, which is not served', async () => {
      const label = 'd'.repeat(63);
      const domain = `${Array.from({ length: 15 }, () => label).join('.')}.${'e'.repeat(1023 - 15 * 64)}`;
      const jid = `${'a'.repeat(1023)}@${domain}/${'r'.repeat(1023)}`;
      expect(Buffer.byteLength(jid)).toBe(3071);
      const body = expectProblem(await app.inject({ method: 'GET', url: `/v1/users/${encodeURIComponent(jid)}/export`, headers: auth(ALL) }), 404);
      expect(String(body.detail)).toMatch(/not served/);
    });

    it('414 problem+json for a path parameter longer than a percent-encoded full JID', async () => {
      const res = await app.inject({ method: 'PUT', url: `/v1/users/${'a'.repeat(MAX_PARAM_LENGTH + 1)}%40localhost/import`, headers: { ...auth(ALL), ...xml }, payload: doc });
      expectProblem(res, 414);
    });

    it('400 problem+json for bad percent-encoding', async () => {
      expectProblem(await app.inject({ method: 'GET', url: '/v1/users/alice%E0%A4%A%40localhost/export', headers: auth(ALL) }), 400);
    });

    it('problem bodies never echo the query, nor the token in it', async () => {
      const secret = 'xpu_c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl';
      for (const url of [`/v1/users/alice%40localhost/export?token=${secret}`, `/v1/nowhere?token=${secret}&x=1`, `/v1/users/%E0%A4%A/export?token=${secret}`]) {
        const res = await app.inject({ method: 'GET', url });
        expect(res.statusCode).toBeGreaterThanOrEqual(400);
        expect(String(res.headers['content-type'])).toContain(PROBLEM);
        expect(res.body).not.toContain(secret);
        expect(res.body).not.toContain('?');
      }
    });
  });
});

describe('slow uploads on a listening server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-edge-stall-'));
  let app: App;
  let port: number;

  beforeAll(async () => {
    app = await makeApp(dir, { XPORTA_LIMITS__UPLOAD_IDLE_TIMEOUT_MS: '1000', XPORTA_LIMITS__MAX_CONCURRENT_IMPORTS: '2' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
    for (const user of ['alice', 'bob']) {
      const res = await app.inject({
        method: 'PUT',
        url: `/v1/users/${user}%40localhost/import?createAccount=true`,
        headers: { ...auth(ALL), ...xml },
        payload: accountDocument({ host: 'localhost', user, password: 'pw' }),
      });
      expect(res.statusCode).toBe(200);
    }
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('two stalled uploads give up their slots and locks, and a third import runs', async () => {
    const doc = accountDocument({ host: 'localhost', user: 'alice', password: 'pw2' });
    const head = (jid: string, token: string): string =>
      `PUT /v1/users/${jid}/import HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/xml\r\nContent-Length: ${doc.length}\r\n\r\n`;
    const { token: userToken } = app.ctx.auth.mintUserToken({ jid: 'bob@localhost', scopes: ['import'], ttlSeconds: 600 });
    // One byte every 5 s: after the first 200 bytes they stall past the 1 s idle deadline.
    const stalled = [
      trickleRequest(port, head('alice%40localhost', ALL), doc.slice(0, 200), doc.slice(200), 5000),
      trickleRequest(port, head('bob%40localhost', userToken), doc.slice(0, 200), doc.slice(200), 5000),
    ];
    for (let i = 0; i < 50 && app.ctx.importSlots.inUse < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(app.ctx.importSlots.inUse).toBe(2);
    expect(await app.ctx.metrics.render()).toMatch(/xporta_imports_in_progress 2/);
    const busy = await app.inject({ method: 'GET', url: '/v1/users/alice%40localhost/export', headers: auth(ALL) });
    expect(busy.statusCode).toBe(409);
    const third = () =>
      app.inject({
        method: 'PUT',
        url: '/v1/users/carol%40localhost/import?createAccount=true',
        headers: { ...auth(ALL), ...xml },
        payload: accountDocument({ host: 'localhost', user: 'carol', password: 'pw' }),
      });
    expect((await third()).statusCode).toBe(429);

    const answers: RawAnswer[] = await Promise.all(stalled);
    for (const answer of answers) {
      expect(answer.status, answer.body).toBe(408);
      expect(answer.headers['content-type']).toContain(PROBLEM);
      expect(answer.closedByServer).toBe(true);
      expect(answer.elapsedMs).toBeLessThan(4000);
    }
    expect(app.ctx.importSlots.inUse).toBe(0);
    expect(app.ctx.locks.isBusy('alice@localhost')).toBe(false);
    expect(app.ctx.locks.isBusy('bob@localhost')).toBe(false);
    expect(await app.ctx.metrics.render()).toMatch(/xporta_imports_in_progress 0/);
    expect((await third()).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v1/users/alice%40localhost/export', headers: auth(ALL) })).statusCode).toBe(200);
  });

  it('Expect: 100-continue is answered 100 only after the guard passed', async () => {
    const ask = (token: string | undefined): Promise<string> =>
      new Promise((resolveAnswer, reject) => {
        const body = '{"scopes":["export"]}';
        const socket = connect(port, '127.0.0.1');
        let text = '';
        socket.on('data', (d: Buffer) => {
          text += d.toString();
          if (text.startsWith('HTTP/1.1 100 ') && text.endsWith('\r\n\r\n') && !text.includes('\r\n\r\nHTTP')) socket.write(body);
        });
        socket.on('close', () => resolveAnswer(text));
        socket.on('error', reject);
        socket.write(
          `POST /v1/users/alice%40localhost/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nExpect: 100-continue\r\n` +
            `${token ? `Authorization: Bearer ${token}\r\n` : ''}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
        );
      });
    const refused = await ask(undefined);
    expect(refused).toMatch(/^HTTP\/1\.1 401 /);
    const forbidden = await ask(EXPORT_ONLY);
    expect(forbidden).toMatch(/^HTTP\/1\.1 403 /);
    const allowed = await ask(ALL);
    expect(allowed).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 201 /);
  });

  it('requests Node cannot parse are answered problem+json too', async () => {
    const garbage = await trickleRequest(port, 'NOT HTTP AT ALL\r\n\r\n', '', '', 1000, 5000);
    expect(garbage.status).toBe(400);
    expect(garbage.headers['content-type']).toBe(PROBLEM);
    const huge = await floodRequest(port, `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, 0, 5000);
    expect(huge.status).toBe(431);
    expect(JSON.parse(huge.body)).toMatchObject({ status: 431 });
  });

  it('a stalled host upload frees its slot too', async () => {
    // A server of its own with a short idle deadline: nothing has to happen before it passes.
    const stallDir = mkdtempSync(join(tmpdir(), 'xporta-edge-host-stall-'));
    const quick = await makeApp(stallDir, { XPORTA_LIMITS__UPLOAD_IDLE_TIMEOUT_MS: '200' });
    try {
      await quick.listen({ host: '127.0.0.1', port: 0 });
      const doc = `<server-data xmlns='urn:xmpp:pie:0'><host jid='example.org'><user name='dave'/></host></server-data>`;
      const head = `PUT /v1/hosts/example.org/import HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ALL}\r\nContent-Type: application/xml\r\nContent-Length: ${doc.length}\r\n\r\n`;
      const answer = await trickleRequest((quick.server.address() as { port: number }).port, head, doc.slice(0, 40), doc.slice(40), 5000);
      expect(answer.status).toBe(408);
      expect(quick.ctx.importSlots.inUse).toBe(0);
    } finally {
      await quick.close();
      rmSync(stallDir, { recursive: true, force: true });
    }
  });
});
