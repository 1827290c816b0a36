/**
 * The HTTP API against a real Prosody-format SQLite store, every response checked against
 * openapi.yaml; the last test asserts that every documented (path, method, status) was seen.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.js';
import type { ServiceContext } from '../../src/core/context.js';
import { buildApp } from '../../src/http/server.js';
import { OUTGOING_MESSAGES } from '../../src/lib/net/outgoing.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import { openStorage } from '../../src/storage/open.js';
import type { DocumentEvent } from '../../src/records/model.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { accountDocument } from '../support/documents.js';
import { ContractChecker } from '../support/openapi.js';

const contract = new ContractChecker();
const ALL = 'operator-all-secret';
const EXPORT_ONLY = 'operator-export-secret';
const OTHER_HOST = 'operator-other-host-secret';

type App = FastifyInstance & { ctx: ServiceContext };

interface Sent {
  statusCode: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  rawPayload: Buffer;
  json<T = Record<string, unknown>>(): T;
}

function configFor(dir: string, extra: Record<string, string> = {}): Config {
  return loadConfig({
    env: {
      XPORTA_DATA_DIR: dir,
      XPORTA_LOG_LEVEL: 'silent',
      XPORTA_HOSTS: JSON.stringify({ localhost: { passwordHash: 'SHA-1' }, 'example.org': { passwordHash: 'SHA-1' } }),
      XPORTA_AUTH__USER_TOKEN_SECRET: 'u'.repeat(40),
      XPORTA_AUTH__TOKENS: JSON.stringify([
        { name: 'all', sha256: sha256Hex(ALL), scopes: ['export', 'import', 'admin'], hosts: ['*'] },
        { name: 'export-only', sha256: sha256Hex(EXPORT_ONLY), scopes: ['export'], hosts: ['*'] },
        { name: 'other-host', sha256: sha256Hex(OTHER_HOST), scopes: ['export', 'import', 'admin'], hosts: ['example.org'] },
      ]),
      ...extra,
    },
    cwd: dir,
  });
}

async function makeApp(dir: string, extra: Record<string, string> = {}): Promise<App> {
  const config = configFor(dir, extra);
  const app = buildApp({ config, storage: await openStorage(config), logger: false }) as unknown as App;
  await app.ready();
  return app;
}

async function send(
  app: FastifyInstance,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  url: string,
  template: string,
  options: { token?: string; headers?: Record<string, string>; payload?: string | Buffer | Readable | object; remoteAddress?: string } = {},
): Promise<Sent> {
  const res = await app.inject({
    method,
    url,
    ...(options.remoteAddress !== undefined ? { remoteAddress: options.remoteAddress } : {}),
    headers: { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers },
    ...(options.payload !== undefined ? { payload: options.payload as string } : {}),
  });
  const sent: Sent = {
    statusCode: res.statusCode,
    headers: res.headers,
    body: res.body,
    rawPayload: res.rawPayload,
    json: <T>() => JSON.parse(res.body) as T,
  };
  contract.check(method, template, sent);
  return sent;
}

const xml = { 'content-type': 'application/xml' };

async function events(doc: string | Buffer): Promise<DocumentEvent[]> {
  const out: DocumentEvent[] = [];
  for await (const e of readDocument(Readable.from([typeof doc === 'string' ? Buffer.from(doc) : doc]))) out.push(e);
  return out;
}

const EXPORT = '/v1/users/{jid}/export';
const IMPORT = '/v1/users/{jid}/import';

describe('HTTP API on the embedded SQLite store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-api-'));
  const doc = accountDocument({ host: 'localhost', user: 'alice', password: 'correct horse' });
  let app: App;
  let exported: string;

  beforeAll(async () => {
    // 127.0.0.2 only: a closed port there answers 502, anything on 127.0.0.1 is refused by policy.
    app = await makeApp(dir, { XPORTA_OUTGOING: JSON.stringify({ allow: ['127.0.0.2'] }) });
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('GET /health answers 200 without a token', async () => {
    const res = await send(app, 'GET', '/health', '/health');
    expect(res.statusCode).toBe(200);
  });

  it('GET /health answers 503 when the database is unreachable', async () => {
    const down = await makeApp(mkdtempSync(join(tmpdir(), 'xporta-api-down-')), {
      XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'postgres', host: '127.0.0.1', port: 1, database: 'none' }),
    });
    const res = await send(down, 'GET', '/health', '/health');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'degraded', storage: { reachable: false } });
    const put = await send(down, 'PUT', '/v1/users/alice%40localhost/import?createAccount=true', IMPORT, { token: ALL, headers: xml, payload: doc });
    expect(put.statusCode).toBe(503);
    expect(put.headers['retry-after']).toMatch(/^\d+$/);
    expect(put.json()).toMatchObject({ type: 'urn:xporta:problem:storage-unavailable' });
    await down.close();
  });

  it('PUT import answers 507 when the store has no space left', async () => {
    const full = await makeApp(mkdtempSync(join(tmpdir(), 'xporta-api-full-')), { XPORTA_STORAGE: JSON.stringify({ type: 'prosody-files', path: 'store' }) });
    // A full disk as the file store meets it while staging (test/faults/files-cleanup.test.ts uses a real tmpfs).
    (full.ctx.storage as unknown as { options: { faults?: object } }).options.faults = {
      beforeStage: () => {
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      },
    };
    const put = await send(full, 'PUT', '/v1/users/alice%40localhost/import?createAccount=true', IMPORT, { token: ALL, headers: xml, payload: doc });
    expect(put.statusCode).toBe(507);
    expect(put.json()).toMatchObject({ type: 'urn:xporta:problem:insufficient-storage' });
    await full.close();
  });

  it('GET /livez answers 200 and GET /readyz 200 or 503 by the storage, without a token', async () => {
    expect((await send(app, 'GET', '/livez', '/livez')).json()).toEqual({ status: 'ok' });
    const ready = await send(app, 'GET', '/readyz', '/readyz');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ok', storage: { reachable: true } });
    const down = await makeApp(mkdtempSync(join(tmpdir(), 'xporta-api-down-')), {
      XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'postgres', host: '127.0.0.1', port: 1, database: 'none' }),
    });
    // Alive though the storage is not: an orchestrator must not restart it.
    expect((await send(down, 'GET', '/livez', '/livez')).statusCode).toBe(200);
    const notReady = await send(down, 'GET', '/readyz', '/readyz');
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toMatchObject({ status: 'unavailable', storage: { reachable: false } });
    await down.close();
  });

  describe('authentication and authorisation', () => {
    it('401 with WWW-Authenticate without a token or with an unknown one', async () => {
      const none = await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT);
      expect(none.statusCode).toBe(401);
      expect(none.headers['www-authenticate']).toMatch(/^Bearer realm="xporta"/);
      const bad = await send(app, 'PUT', '/v1/users/alice%40localhost/import', IMPORT, { token: 'nope', headers: xml, payload: doc });
      expect(bad.statusCode).toBe(401);
      expect(bad.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    });

    it('403 for a token without the scope, or for another host', async () => {
      const scope = await send(app, 'PUT', '/v1/users/alice%40localhost/import', IMPORT, { token: EXPORT_ONLY, headers: xml, payload: doc });
      expect(scope.statusCode).toBe(403);
      const host = await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: OTHER_HOST });
      expect(host.statusCode).toBe(403);
    });

    it('404 for an unknown user, or an unknown user without createAccount', async () => {
      expect((await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: ALL })).statusCode).toBe(404);
      const res = await send(app, 'PUT', '/v1/users/alice%40localhost/import', IMPORT, { token: ALL, headers: xml, payload: doc });
      expect(res.statusCode).toBe(404);
      expect(res.json().detail).toMatch(/createAccount/);
    });

    it('400 for an invalid JID and an unknown data kind', async () => {
      expect((await send(app, 'GET', '/v1/users/a%2Fb%40%40localhost/export', EXPORT, { token: ALL })).statusCode).toBe(400);
      expect((await send(app, 'GET', '/v1/users/alice%40localhost/export?include=roster,bogus', EXPORT, { token: ALL })).statusCode).toBe(400);
    });
  });

  describe('import then export', () => {
    it('imports a document into a new account and reports counts', async () => {
      const res = await send(app, 'PUT', '/v1/users/alice%40localhost/import?createAccount=true', IMPORT, { token: ALL, headers: xml, payload: doc });
      expect(res.statusCode).toBe(200);
      const report = res.json<{ created: boolean; counts: Record<string, number> }>();
      expect(report.created).toBe(true);
      expect(report.counts).toMatchObject({ archive: 3, offline: 1, blocklist: 1, vcard: 1, private: 1 });
    });

    it('exports it back, streamed, as an attachment with the same records', async () => {
      const res = await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: ALL });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-disposition']).toBe(`attachment; filename="alice@localhost.xml"; filename*=UTF-8''alice%40localhost.xml`);
      exported = res.body;
      const [before, after] = [await events(doc), await events(exported)];
      expect(after.filter((e) => e.kind === 'archive')).toEqual(before.filter((e) => e.kind === 'archive'));
      expect(after.find((e) => e.kind === 'vcard')).toEqual(before.find((e) => e.kind === 'vcard'));
      expect(after.find((e) => e.kind === 'blocklist')).toEqual(before.find((e) => e.kind === 'blocklist'));
      expect(after.find((e) => e.kind === 'user')).toMatchObject({ name: 'alice', scram: [{ mechanism: 'SCRAM-SHA-1' }] });
    });

    it('gzips the export when asked', async () => {
      const res = await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: ALL, headers: { 'accept-encoding': 'gzip' } });
      expect(res.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(res.rawPayload).toString('utf8')).toBe(exported);
    });

    it('limits the export to the selected kinds', async () => {
      const res = await send(app, 'GET', '/v1/users/alice%40localhost/export?include=roster', EXPORT, { token: ALL });
      const kinds = new Set((await events(res.body)).map((e) => e.kind));
      expect([...kinds].sort()).toEqual(['host', 'host-end', 'pending-subscription', 'roster', 'user', 'user-end']);
      const noArchive = await send(app, 'GET', '/v1/users/alice%40localhost/export?exclude=archive,offline', EXPORT, { token: ALL });
      expect((await events(noArchive.body)).some((e) => e.kind === 'archive' || e.kind === 'offline')).toBe(false);
    });

    it('accepts a gzip-encoded body and a multipart upload', async () => {
      const gz = await send(app, 'PUT', '/v1/users/alice%40localhost/import?mode=merge', IMPORT, {
        token: ALL,
        headers: { ...xml, 'content-encoding': 'gzip' },
        payload: gzipSync(doc),
      });
      expect(gz.statusCode).toBe(200);
      const boundary = 'xportaBoundary42';
      const body = Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="alice.xml"\r\nContent-Type: application/xml\r\n\r\n${doc}\r\n--${boundary}--\r\n`,
      );
      const mp = await send(app, 'PUT', '/v1/users/alice%40localhost/import', IMPORT, {
        token: ALL,
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
        payload: body,
      });
      expect(mp.statusCode).toBe(200);
      // Each import bumps the roster version (clients holding the old one must re-fetch).
      const res = await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: ALL });
      expect(Number(/<query xmlns='jabber:iq:roster' ver='(\d+)'>/.exec(res.body)?.[1])).toBeGreaterThan(7);
      exported = res.body;
    });

    it('a dry run reports and changes nothing', async () => {
      const other = accountDocument({ host: 'localhost', user: 'alice', password: 'x', archiveCount: 7 });
      const res = await send(app, 'PUT', '/v1/users/alice%40localhost/import?dryRun=true', IMPORT, { token: ALL, headers: xml, payload: other });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ dryRun: true, counts: { archive: 7 } });
      expect((await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: ALL })).body).toBe(exported);
    });
  });

  describe('export files', () => {
    const CREATE = '/v1/users/{jid}/exports';
    const FILE = '/v1/exports/{id}';
    // Failed authentications count per client address; these must not spend the budget of later tests.
    const ELSEWHERE = '127.0.0.77';
    let url = '';

    it('POST writes one, GET serves it whole, in a range, or not modified', async () => {
      const created = await send(app, 'POST', '/v1/users/alice%40localhost/exports', CREATE, { token: ALL });
      expect(created.statusCode).toBe(201);
      url = String(created.headers.location);
      const whole = await send(app, 'GET', url, FILE, { token: EXPORT_ONLY });
      expect(whole.statusCode).toBe(200);
      expect(whole.body).toBe(exported);
      const part = await send(app, 'GET', url, FILE, { token: ALL, headers: { range: 'bytes=0-9' } });
      expect(part.statusCode).toBe(206);
      expect(part.body).toBe(exported.slice(0, 10));
      expect((await send(app, 'GET', url, FILE, { token: ALL, headers: { 'if-none-match': String(whole.headers.etag) } })).statusCode).toBe(304);
      expect((await send(app, 'GET', url, FILE, { token: ALL, headers: { range: 'bytes=99999999-' } })).statusCode).toBe(416);
    });

    it('400, 401, 403, 404 and 409 when it cannot be written', async () => {
      expect((await send(app, 'POST', '/v1/users/alice%40localhost/exports?include=nope', CREATE, { token: ALL })).statusCode).toBe(400);
      expect((await send(app, 'POST', '/v1/users/alice%40localhost/exports', CREATE, { remoteAddress: ELSEWHERE })).statusCode).toBe(401);
      expect((await send(app, 'POST', '/v1/users/alice%40localhost/exports', CREATE, { token: OTHER_HOST })).statusCode).toBe(403);
      expect((await send(app, 'POST', '/v1/users/nobody%40localhost/exports', CREATE, { token: ALL })).statusCode).toBe(404);
      const lease = await app.ctx.locks.tryAcquire('alice@localhost', 'exclusive');
      try {
        expect((await send(app, 'POST', '/v1/users/alice%40localhost/exports', CREATE, { token: ALL })).statusCode).toBe(409);
      } finally {
        lease?.release();
      }
    });

    it('401 without a token, 404 for a token of another host; DELETE removes it', async () => {
      expect((await send(app, 'GET', url, FILE, { remoteAddress: ELSEWHERE })).statusCode).toBe(401);
      expect((await send(app, 'GET', url, FILE, { token: OTHER_HOST })).statusCode).toBe(404);
      expect((await send(app, 'DELETE', url, FILE, { remoteAddress: ELSEWHERE })).statusCode).toBe(401);
      expect((await send(app, 'DELETE', url, FILE, { token: OTHER_HOST })).statusCode).toBe(404);
      expect((await send(app, 'DELETE', url, FILE, { token: ALL })).statusCode).toBe(204);
      expect((await send(app, 'GET', url, FILE, { token: ALL })).statusCode).toBe(404);
    });

    it('400 for an id no export could have', async () => {
      expect((await send(app, 'GET', '/v1/exports/short', FILE, { token: ALL })).statusCode).toBe(400);
      expect((await send(app, 'DELETE', '/v1/exports/short', FILE, { token: ALL })).statusCode).toBe(400);
    });
  });

  describe('bad input changes nothing', () => {
    async function expectUnchanged(): Promise<void> {
      expect((await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: ALL })).body).toBe(exported);
    }

    it('400 with line and column for malformed XML', async () => {
      const broken = doc.replace('</vCard>', '</vcard>');
      const res = await send(app, 'PUT', '/v1/users/alice%40localhost/import', IMPORT, { token: ALL, headers: xml, payload: broken });
      expect(res.statusCode).toBe(400);
      const line = broken.split('\n').findIndex((l) => l.includes('</vcard>')) + 1;
      expect(res.json()).toMatchObject({ line, column: broken.split('\n')[line - 1]!.indexOf('</vcard>') + '</vcard>'.length });
      expect(res.json().column).toBeGreaterThan(0);
      await expectUnchanged();
    });

    it('400 for a DOCTYPE (no entity expansion)', async () => {
      const evil = `<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><server-data xmlns='urn:xmpp:pie:0'/>`;
      const res = await send(app, 'PUT', '/v1/users/alice%40localhost/import', IMPORT, { token: ALL, headers: xml, payload: evil });
      expect(res.statusCode).toBe(400);
      expect(res.json().type).toMatch(/doctype/);
      await expectUnchanged();
    });

    it('422 for a document with two users, applied halfway before the second appears', async () => {
      const two = doc.replace('</user>\n</host>', `</user>\n<user name='mallory'/>\n</host>`);
      const res = await send(app, 'PUT', '/v1/users/alice%40localhost/import', IMPORT, { token: ALL, headers: xml, payload: two });
      expect(res.statusCode).toBe(422);
      await expectUnchanged();
    });

    it('422 for a wrong root element', async () => {
      const res = await send(app, 'PUT', '/v1/users/alice%40localhost/import', IMPORT, { token: ALL, headers: xml, payload: '<roster xmlns="jabber:iq:roster"/>' });
      expect(res.statusCode).toBe(422);
      expect(res.json()).toMatchObject({ line: 1 });
    });

    it('415 for a wrong content type or encoding', async () => {
      const res = await send(app, 'PUT', '/v1/users/alice%40localhost/import', IMPORT, { token: ALL, headers: { 'content-type': 'text/plain' }, payload: doc });
      expect(res.statusCode).toBe(415);
      const br = await send(app, 'PUT', '/v1/users/alice%40localhost/import', IMPORT, { token: ALL, headers: { ...xml, 'content-encoding': 'br' }, payload: doc });
      expect(br.statusCode).toBe(415);
      await expectUnchanged();
    });

    it('409 while another import into the account runs, and for an export meanwhile', async () => {
      const slow = new PassThrough();
      const first = app.inject({ method: 'PUT', url: '/v1/users/alice%40localhost/import?mode=merge', headers: { ...xml, authorization: `Bearer ${ALL}` }, payload: slow });
      slow.write(doc.slice(0, 200));
      for (let i = 0; i < 100 && !app.ctx.locks.isBusy('alice@localhost'); i++) await new Promise((r) => setTimeout(r, 10));
      const second = await send(app, 'PUT', '/v1/users/alice%40localhost/import', IMPORT, { token: ALL, headers: xml, payload: doc });
      expect(second.statusCode).toBe(409);
      expect(second.headers['content-type']).toMatch(/problem\+json/);
      const exporting = await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: ALL });
      expect(exporting.statusCode).toBe(409);
      slow.end(doc.slice(200));
      expect((await first).statusCode).toBe(200);
    });
  });

  describe('limits', () => {
    const small = mkdtempSync(join(tmpdir(), 'xporta-api-small-'));
    let limited: App;
    beforeAll(async () => {
      limited = await makeApp(small, { XPORTA_LIMITS__MAX_UPLOAD_BYTES: String(64 * 1024), XPORTA_AUTH__FAILED_AUTH_PER_MINUTE: '2' });
    });
    afterAll(async () => {
      await limited.close();
      rmSync(small, { recursive: true, force: true });
    });

    it('413 for an oversize body and for a gzip bomb', async () => {
      const big = accountDocument({ host: 'localhost', user: 'alice', password: 'x', archiveCount: 400 });
      const res = await send(limited, 'PUT', '/v1/users/alice%40localhost/import?createAccount=true', IMPORT, { token: ALL, headers: xml, payload: big });
      expect(res.statusCode).toBe(413);
      const bomb = gzipSync(Buffer.concat([Buffer.from("<server-data xmlns='urn:xmpp:pie:0'><!--"), Buffer.alloc(50 * 1024 * 1024, 0x20), Buffer.from('--></server-data>')]));
      expect(bomb.length).toBeLessThan(64 * 1024);
      const bombed = await send(limited, 'PUT', '/v1/users/alice%40localhost/import?createAccount=true', IMPORT, {
        token: ALL,
        headers: { ...xml, 'content-encoding': 'gzip' },
        payload: bomb,
      });
      expect(bombed.statusCode).toBe(413);
      expect((await send(limited, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: ALL })).statusCode).toBe(404);
    });

    it('413 for an oversize host upload, 429 when every import slot is taken', async () => {
      const big = `<server-data xmlns='urn:xmpp:pie:0'><host jid='example.org'>${"<user name='u'/>".repeat(0)}<!--${' '.repeat(70 * 1024)}--></host></server-data>`;
      expect((await send(limited, 'PUT', '/v1/hosts/example.org/import', '/v1/hosts/{host}/import', { token: ALL, headers: xml, payload: big })).statusCode).toBe(413);
      const held = [limited.ctx.importSlots.tryTake(), limited.ctx.importSlots.tryTake()];
      const busy = await send(limited, 'PUT', '/v1/hosts/example.org/import', '/v1/hosts/{host}/import', { token: ALL, headers: xml, payload: '<x/>' });
      expect(busy.statusCode).toBe(429);
      const busyUser = await send(limited, 'PUT', '/v1/users/alice%40localhost/import?createAccount=true', IMPORT, { token: ALL, headers: xml, payload: '<x/>' });
      expect(busyUser.statusCode).toBe(429);
      for (const lease of held) lease?.release();
    });

    it('429 with Retry-After for failures after repeated failed authentication, never for a valid token', async () => {
      await send(limited, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: 'wrong1' });
      await send(limited, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: 'wrong2' });
      const res = await send(limited, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: 'wrong3' });
      expect(res.statusCode).toBe(429);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      const valid = await send(limited, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: ALL });
      expect(valid.statusCode).not.toBe(429);
      expect(valid.statusCode).not.toBe(401);
    });
  });

  describe('user tokens', () => {
    const TOKENS = '/v1/users/{jid}/tokens';
    let userToken: string;

    it('an admin mints a short-lived token for one account', async () => {
      const res = await send(app, 'POST', '/v1/users/alice%40localhost/tokens', TOKENS, { token: ALL, payload: { scopes: ['export'], ttlSeconds: 600 } });
      expect(res.statusCode).toBe(201);
      userToken = res.json<{ token: string }>().token;
    });

    it('400, 401, 403 and 404 around minting', async () => {
      expect((await send(app, 'POST', '/v1/users/alice%40localhost/tokens', TOKENS, { token: ALL, payload: { scopes: ['admin'] } })).statusCode).toBe(400);
      expect((await send(app, 'POST', '/v1/users/alice%40localhost/tokens', TOKENS, { payload: {} })).statusCode).toBe(401);
      expect((await send(app, 'POST', '/v1/users/alice%40localhost/tokens', TOKENS, { token: EXPORT_ONLY, payload: {} })).statusCode).toBe(403);
      expect((await send(app, 'POST', '/v1/users/alice%40nowhere.test/tokens', TOKENS, { token: ALL, payload: {} })).statusCode).toBe(404);
    });

    it('an expired user token answers 401 and exports nothing', async () => {
      const { token } = app.ctx.auth.mintUserToken({ jid: 'alice@localhost', scopes: ['export'], ttlSeconds: 60, now: Math.floor(Date.now() / 1000) - 120 });
      const res = await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token });
      expect(res.statusCode).toBe(401);
      expect(res.json().detail).toBe('token expired');
      expect(res.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    });

    it('an unknown account, or a field the schema does not have, mints nothing', async () => {
      expect((await send(app, 'POST', '/v1/users/nobody%40localhost/tokens', TOKENS, { token: ALL, payload: {} })).statusCode).toBe(404);
      const extra = await send(app, 'POST', '/v1/users/alice%40localhost/tokens', TOKENS, { token: ALL, payload: { scopes: ['export'], jid: 'bob@localhost' } });
      expect(extra.statusCode).toBe(400);
      expect(extra.json().detail).toMatch(/unknown field "jid"/);
    });

    it('lists and revokes an account\'s user tokens', async () => {
      const LIST = '/v1/users/{jid}/tokens';
      const REVOKE = '/v1/users/{jid}/tokens/{jti}';
      const minted = (await send(app, 'POST', '/v1/users/alice%40localhost/tokens', TOKENS, { token: ALL, payload: {} })).json<{ token: string; jti: string }>();
      const listed = await send(app, 'GET', '/v1/users/alice%40localhost/tokens', LIST, { token: ALL });
      expect(listed.statusCode).toBe(200);
      expect(listed.json<{ tokens: { jti: string }[] }>().tokens.map((t) => t.jti)).toContain(minted.jti);
      expect(listed.body).not.toContain(minted.token);
      expect((await send(app, 'GET', '/v1/users/alice%40localhost/tokens', LIST)).statusCode).toBe(401);
      expect((await send(app, 'GET', '/v1/users/alice%40localhost/tokens', LIST, { token: EXPORT_ONLY })).statusCode).toBe(403);
      expect((await send(app, 'GET', '/v1/users/alice%40nowhere.test/tokens', LIST, { token: ALL })).statusCode).toBe(404);

      const revoke = (jid: string, jti: string, token?: string): Promise<Sent> =>
        app.inject({ method: 'DELETE', url: `/v1/users/${jid}/tokens/${jti}`, headers: token ? { authorization: `Bearer ${token}` } : {} }).then((res) => {
          const sent = { statusCode: res.statusCode, headers: res.headers, body: res.body, rawPayload: res.rawPayload, json: <T>() => JSON.parse(res.body) as T };
          contract.check('DELETE', REVOKE, sent);
          return sent;
        });
      expect((await revoke('alice%40localhost', minted.jti)).statusCode).toBe(401);
      expect((await revoke('alice%40localhost', minted.jti, EXPORT_ONLY)).statusCode).toBe(403);
      expect((await revoke('bob%40localhost', minted.jti, ALL)).statusCode).toBe(404);
      expect((await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: minted.token })).statusCode).toBe(200);
      expect((await revoke('alice%40localhost', minted.jti, ALL)).statusCode).toBe(204);
      const refused = await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: minted.token });
      expect(refused.statusCode).toBe(401);
      expect(refused.json().detail).toBe('token revoked');
    });

    it('the user token exports its own account and nothing else', async () => {
      expect((await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: userToken })).statusCode).toBe(200);
      expect((await send(app, 'GET', '/v1/users/bob%40localhost/export', EXPORT, { token: userToken })).statusCode).toBe(403);
      expect((await send(app, 'PUT', '/v1/users/alice%40localhost/import', IMPORT, { token: userToken, headers: xml, payload: doc })).statusCode).toBe(403);
    });
  });

  describe('service endpoints', () => {
    it('/metrics for operators', async () => {
      const res = await send(app, 'GET', '/metrics', '/metrics', { token: EXPORT_ONLY });
      expect(res.statusCode).toBe(200);
      expect(res.body).toMatch(/xporta_records_total\{direction="import",kind="archive"\} \d+/);
      expect((await send(app, 'GET', '/metrics', '/metrics')).statusCode).toBe(401);
      const { token } = (await send(app, 'POST', '/v1/users/alice%40localhost/tokens', '/v1/users/{jid}/tokens', { token: ALL, payload: {} })).json<{ token: string }>();
      expect((await send(app, 'GET', '/metrics', '/metrics', { token })).statusCode).toBe(403);
    });

    it('/metrics refuses a token limited to some hosts: its figures cover every host', async () => {
      expect((await send(app, 'GET', '/metrics', '/metrics', { token: OTHER_HOST })).statusCode).toBe(403);
    });

    it('/openapi.yaml without a token', async () => {
      expect((await send(app, 'GET', '/openapi.yaml', '/openapi.yaml')).body).toMatch(/^openapi: 3\.1\.0/);
    });
  });

  describe('operator tokens in the token store', () => {
    const TOKENS = '/v1/tokens';
    const ONE = '/v1/tokens/{id}';
    const ROTATE = '/v1/tokens/{id}/rotate';

    async function call(method: 'GET' | 'POST' | 'DELETE', url: string, template: string, token?: string, payload?: object): Promise<Sent> {
      const res = await app.inject({ method, url, headers: token ? { authorization: `Bearer ${token}` } : {}, ...(payload ? { payload } : {}) });
      const sent = { statusCode: res.statusCode, headers: res.headers, body: res.body, rawPayload: res.rawPayload, json: <T>() => JSON.parse(res.body) as T };
      contract.check(method, template, sent);
      return sent;
    }

    it('create, list, rotate and revoke without a restart', async () => {
      const created = await call('POST', '/v1/tokens', TOKENS, ALL, { name: 'panel-2', scopes: ['export'], hosts: ['localhost'] });
      expect(created.statusCode).toBe(201);
      const { id, token } = created.json<{ id: string; token: string }>();
      expect((await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token })).statusCode).toBe(200);
      expect((await send(app, 'GET', '/v1/users/user0%40example.org/export', EXPORT, { token })).statusCode).toBe(403);

      const listed = await call('GET', '/v1/tokens', TOKENS, ALL);
      expect(listed.statusCode).toBe(200);
      const entries = listed.json<{ tokens: { name: string; source: string; id?: string }[] }>().tokens;
      expect(entries).toContainEqual(expect.objectContaining({ name: 'all', source: 'config' }));
      expect(entries).toContainEqual(expect.objectContaining({ id, name: 'panel-2', source: 'store' }));
      expect(listed.body).not.toContain(token);
      expect(listed.body).not.toMatch(/[0-9a-f]{64}/);

      const rotated = await call('POST', `/v1/tokens/${id}/rotate`, ROTATE, ALL);
      expect(rotated.statusCode).toBe(201);
      const renewed = rotated.json<{ token: string }>().token;
      expect((await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token })).statusCode).toBe(401);
      expect((await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: renewed })).statusCode).toBe(200);

      expect((await call('DELETE', `/v1/tokens/${id}`, ONE, ALL)).statusCode).toBe(204);
      expect((await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: renewed })).statusCode).toBe(401);
      expect((await call('POST', `/v1/tokens/${id}/rotate`, ROTATE, ALL)).statusCode).toBe(404);
    });

    it('400, 401, 403 and 404 around token management', async () => {
      expect((await call('POST', '/v1/tokens', TOKENS, ALL, { scopes: ['bogus'] })).statusCode).toBe(400);
      expect((await call('POST', '/v1/tokens', TOKENS, ALL, { hosts: ['elsewhere.test'] })).statusCode).toBe(400);
      expect((await call('POST', '/v1/tokens', TOKENS, ALL, { name: 'x', sha256: 'f'.repeat(64) })).statusCode).toBe(400);
      expect((await call('POST', '/v1/tokens', TOKENS, undefined, {})).statusCode).toBe(401);
      // Admin on some hosts only: it could otherwise make a token wider than itself.
      expect((await call('POST', '/v1/tokens', TOKENS, OTHER_HOST, {})).statusCode).toBe(403);
      expect((await call('GET', '/v1/tokens', TOKENS)).statusCode).toBe(401);
      expect((await call('GET', '/v1/tokens', TOKENS, EXPORT_ONLY)).statusCode).toBe(403);
      expect((await call('DELETE', '/v1/tokens/nope', ONE)).statusCode).toBe(401);
      expect((await call('DELETE', '/v1/tokens/nope', ONE, EXPORT_ONLY)).statusCode).toBe(403);
      expect((await call('DELETE', '/v1/tokens/nope', ONE, ALL)).statusCode).toBe(404);
      expect((await call('POST', '/v1/tokens/nope/rotate', ROTATE)).statusCode).toBe(401);
      expect((await call('POST', '/v1/tokens/nope/rotate', ROTATE, EXPORT_ONLY)).statusCode).toBe(403);
    });
  });

  describe('whole hosts', () => {
    const HOST_EXPORT = '/v1/hosts/{host}/export';
    const HOST_IMPORT = '/v1/hosts/{host}/import';
    const JOB = '/v1/jobs/{id}';
    const hostDoc = (n: number): string =>
      `<server-data xmlns='urn:xmpp:pie:0'><host jid='example.org'>${Array.from({ length: n }, (_, i) => `<user name='user${i}'><query xmlns='jabber:iq:roster'><item jid='friend${i}@example.net' subscription='both'/></query></user>`).join('')}</host></server-data>`;

    it('imports every account of a host and exports them again', async () => {
      const res = await send(app, 'PUT', '/v1/hosts/example.org/import?createAccount=true', HOST_IMPORT, { token: ALL, headers: xml, payload: hostDoc(5) });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ host: 'example.org', progress: { done: 5, failed: 0, total: 5 } });
      const exportRes = await send(app, 'GET', '/v1/hosts/example.org/export', HOST_EXPORT, { token: ALL });
      expect(exportRes.statusCode).toBe(200);
      expect((await events(exportRes.body)).filter((e) => e.kind === 'user').map((e) => (e as { name: string }).name)).toEqual(
        ['user0', 'user1', 'user2', 'user3', 'user4'],
      );
    });

    it('runs in the background with progress at /v1/jobs/{id}', async () => {
      const res = await send(app, 'PUT', '/v1/hosts/example.org/import?async=true&mode=merge', HOST_IMPORT, { token: ALL, headers: xml, payload: hostDoc(3) });
      expect(res.statusCode).toBe(202);
      const location = String(res.headers.location);
      let job: { state: string } = { state: 'running' };
      for (let i = 0; i < 100 && job.state === 'running'; i++) {
        await new Promise((r) => setTimeout(r, 20));
        job = (await send(app, 'GET', location, JOB, { token: ALL })).json();
      }
      expect(job).toMatchObject({ state: 'succeeded', progress: { done: 3, total: 3 } });
      expect((await send(app, 'GET', '/v1/jobs/nope', JOB, { token: ALL })).statusCode).toBe(404);
      const listed = await send(app, 'GET', '/v1/jobs', '/v1/jobs', { token: ALL });
      expect(listed.statusCode).toBe(200);
      expect((listed.json() as { jobs: { id: string }[] }).jobs.map((j) => j.id)).toContain(location.split('/').pop());
      expect((await send(app, 'GET', '/v1/jobs?limit=0', '/v1/jobs', { token: ALL })).statusCode).toBe(400);
      // From an address of their own: failed authentications count per address.
      expect((await send(app, 'GET', '/v1/jobs', '/v1/jobs', { remoteAddress: '192.0.2.77' })).statusCode).toBe(401);
      expect((await send(app, 'DELETE', location, JOB, { token: ALL })).statusCode).toBe(409);
      expect((await send(app, 'DELETE', '/v1/jobs/nope', JOB, { token: ALL })).statusCode).toBe(404);
      expect((await send(app, 'DELETE', location, JOB, { remoteAddress: '192.0.2.77' })).statusCode).toBe(401);
      expect((await send(app, 'GET', location, JOB)).statusCode).toBe(401);
    });

    it('a broken tail changes no account (validated before applying)', async () => {
      const broken = hostDoc(2).replace('</host>', "<user name='x'><query></host>");
      const res = await send(app, 'PUT', '/v1/hosts/example.org/import?createAccount=true', HOST_IMPORT, { token: ALL, headers: xml, payload: broken });
      expect(res.statusCode).toBe(400);
      const wrongHost = hostDoc(1).replace("jid='example.org'", "jid='localhost'");
      expect((await send(app, 'PUT', '/v1/hosts/example.org/import', HOST_IMPORT, { token: ALL, headers: xml, payload: wrongHost })).statusCode).toBe(422);
    });

    it('needs an operator token for the host, and a served host', async () => {
      expect((await send(app, 'GET', '/v1/hosts/example.org/export', HOST_EXPORT)).statusCode).toBe(401);
      expect((await send(app, 'GET', '/v1/hosts/localhost/export', HOST_EXPORT, { token: OTHER_HOST })).statusCode).toBe(403);
      expect((await send(app, 'GET', '/v1/hosts/nowhere.test/export', HOST_EXPORT, { token: ALL })).statusCode).toBe(404);
      expect((await send(app, 'GET', '/v1/hosts/a%20b/export', HOST_EXPORT, { token: ALL })).statusCode).toBe(400);
      expect((await send(app, 'PUT', '/v1/hosts/example.org/import', HOST_IMPORT, { token: EXPORT_ONLY, headers: xml, payload: hostDoc(1) })).statusCode).toBe(403);
      expect((await send(app, 'PUT', '/v1/hosts/example.org/import', HOST_IMPORT, { payload: hostDoc(1), headers: xml })).statusCode).toBe(401);
      expect((await send(app, 'PUT', '/v1/hosts/nowhere.test/import', HOST_IMPORT, { token: ALL, headers: xml, payload: hostDoc(1) })).statusCode).toBe(404);
      expect((await send(app, 'PUT', '/v1/hosts/example.org/import', HOST_IMPORT, { token: ALL, headers: { 'content-type': 'text/plain' }, payload: 'x' })).statusCode).toBe(415);
      expect((await send(app, 'PUT', '/v1/hosts/example.org/import?include=nope', HOST_IMPORT, { token: ALL, headers: xml, payload: 'x' })).statusCode).toBe(400);
    });
  });

  describe('import-from another xporta', () => {
    const FROM = '/v1/users/{jid}/import-from';
    const targetDir = mkdtempSync(join(tmpdir(), 'xporta-api-target-'));
    let target: App;
    let sourceUrl: string;

    beforeAll(async () => {
      target = await makeApp(targetDir, { XPORTA_LIMITS__MAX_UPLOAD_BYTES: String(1024 * 1024), XPORTA_OUTGOING: JSON.stringify({ allow: ['127.0.0.0/8'] }) });
      sourceUrl = await app.listen({ host: '127.0.0.1', port: 0 });
    });
    afterAll(async () => {
      await target.close();
      rmSync(targetDir, { recursive: true, force: true });
    });

    it('pulls the export of another instance and applies it as a stream', async () => {
      const res = await send(target, 'POST', '/v1/users/alice%40localhost/import-from', FROM, {
        token: ALL,
        payload: { url: `${sourceUrl}/v1/users/alice%40localhost/export`, token: ALL, createAccount: true },
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ created: true, counts: { archive: 3 } });
      const moved = await send(target, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: ALL });
      const original = await send(app, 'GET', '/v1/users/alice%40localhost/export', EXPORT, { token: ALL });
      const [a, b] = [await events(original.body), await events(moved.body)];
      expect(b.filter((e) => e.kind !== 'roster')).toEqual(a.filter((e) => e.kind !== 'roster'));
    });

    it('moves to another JID, rewriting references to the old one', async () => {
      const res = await send(target, 'POST', '/v1/users/alice%40example.org/import-from', FROM, {
        token: ALL,
        payload: { url: `${sourceUrl}/v1/users/alice%40localhost/export`, token: ALL, createAccount: true },
      });
      expect(res.statusCode).toBe(200);
      const moved = await send(target, 'GET', '/v1/users/alice%40example.org/export?include=archive', EXPORT, { token: ALL });
      expect(moved.body).not.toContain('alice@localhost');
      expect(moved.body).toContain("from='alice@example.org/phone'");
    });

    it('answers the documented errors', async () => {
      const url = `${sourceUrl}/v1/users/alice%40localhost/export`;
      expect((await send(target, 'POST', '/v1/users/alice%40localhost/import-from', FROM, { payload: { url } })).statusCode).toBe(401);
      expect((await send(target, 'POST', '/v1/users/alice%40localhost/import-from', FROM, { token: EXPORT_ONLY, payload: { url } })).statusCode).toBe(403);
      expect((await send(target, 'POST', '/v1/users/bob%40localhost/import-from', FROM, { token: ALL, payload: { url, token: ALL } })).statusCode).toBe(404);
      expect((await send(target, 'POST', '/v1/users/alice%40localhost/import-from', FROM, { token: ALL, payload: { url: 'ftp://x/y' } })).statusCode).toBe(400);
      const unreachable = await send(target, 'POST', '/v1/users/alice%40localhost/import-from', FROM, { token: ALL, payload: { url: 'http://127.0.0.1:1/x' } });
      expect(unreachable.statusCode).toBe(502);
      const refused = await send(target, 'POST', '/v1/users/alice%40localhost/import-from', FROM, { token: ALL, payload: { url, token: 'wrong' } });
      expect(refused.statusCode).toBe(502);
      // Not what the source said: a refused port and a 401 look the same to the caller.
      expect(refused.json().detail).toBe(unreachable.json().detail);
      expect(refused.json().detail).toBe(OUTGOING_MESSAGES.failed);
      const byPolicy = await send(app, 'POST', '/v1/users/alice%40localhost/import-from', FROM, { token: ALL, payload: { url, token: ALL } });
      expect(byPolicy.statusCode).toBe(422);
      expect(byPolicy.json()).toMatchObject({ type: 'urn:xporta:problem:outgoing-refused', detail: OUTGOING_MESSAGES.refused });
      const manyUsers = await send(target, 'POST', '/v1/users/alice%40localhost/import-from', FROM, {
        token: ALL,
        payload: { url: `${sourceUrl}/v1/hosts/example.org/export`, token: ALL },
      });
      expect(manyUsers.statusCode).toBe(422);
      const lease = await target.ctx.locks.tryAcquire('alice@localhost', 'exclusive');
      expect((await send(target, 'POST', '/v1/users/alice%40localhost/import-from', FROM, { token: ALL, payload: { url, token: ALL } })).statusCode).toBe(409);
      lease?.release();
    });

    it('413 when the source document exceeds the upload limit', async () => {
      await send(app, 'PUT', '/v1/users/big%40localhost/import?createAccount=true', IMPORT, {
        token: ALL,
        headers: xml,
        payload: accountDocument({ host: 'localhost', user: 'big', password: 'x', archiveCount: 5000 }),
      });
      const res = await send(target, 'POST', '/v1/users/big%40localhost/import-from', FROM, {
        token: ALL,
        payload: { url: `${sourceUrl}/v1/users/big%40localhost/export`, token: ALL, createAccount: true },
      });
      expect(res.statusCode).toBe(413);
      expect((await send(target, 'GET', '/v1/users/big%40localhost/export', EXPORT, { token: ALL })).statusCode).toBe(404);
    });
  });

  describe('XEP-0283 moves (storage route: no component here)', () => {
    const MOVED = '/v1/users/{jid}/moved';

    it('publishes the moved statement and reports the contacts to ask', async () => {
      const res = await send(app, 'POST', '/v1/users/alice%40localhost/moved', MOVED, { token: ALL, payload: { newJid: 'alice@new.example' } });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ jid: 'alice@localhost', newJid: 'alice@new.example', statement: { published: true, via: 'storage' } });
      const status = await send(app, 'GET', '/v1/users/alice%40localhost/moved', MOVED, { token: EXPORT_ONLY });
      expect(status.statusCode).toBe(200);
      const body = status.json<{ contacts: { jid: string; state: string }[]; steps: { to: string }[] }>();
      expect(body.contacts).toContainEqual({ jid: 'bob@example.net', state: 'unknown' });
      expect(body.steps.map((s) => s.to)).toContain('bob@example.net');
      const exported = await send(app, 'GET', '/v1/users/alice%40localhost/export?include=pep', EXPORT, { token: ALL });
      expect(exported.body).toContain('<new-jid>alice@new.example</new-jid>');
    });

    it('reports only a checked summary of what the import link answered', async () => {
      const answers = [
        {
          user: 'alice@new.example',
          mode: 'merge',
          dryRun: false,
          created: false,
          counts: { roster: 2, archive: 3, 'remote text': 1 },
          skipped: [{ kind: 'roster', reason: 'remote text <script>' }],
          unsupported: ['privacy', 'bogus'],
          warnings: ['remote text that must not be repeated'],
          extra: 'remote text',
        },
        { user: 'alice@new.example', mode: 'merge', dryRun: false, created: false, counts: { roster: 'remote text' } },
        'remote text',
      ];
      let next = 0;
      const upstream = createServer((req, res) => {
        req.resume();
        req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answers[next++])));
      });
      upstream.listen(0, '127.0.0.2');
      await once(upstream, 'listening');
      const importUrl = `http://127.0.0.2:${(upstream.address() as AddressInfo).port}/v1/users/alice%40new.example/import?token=xpu_x`;
      try {
        const res = await send(app, 'POST', '/v1/users/alice%40localhost/moved', MOVED, { token: ALL, payload: { newJid: 'alice@new.example', importUrl } });
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json().copied).toEqual({
          user: 'alice@new.example',
          mode: 'merge',
          dryRun: false,
          created: false,
          counts: { roster: 2, archive: 3 },
          skipped: [],
          unsupported: ['privacy'],
          warnings: [],
        });
        for (let i = 1; i < answers.length; i++) {
          const bad = await send(app, 'POST', '/v1/users/alice%40localhost/moved', MOVED, { token: ALL, payload: { newJid: 'alice@new.example', importUrl } });
          expect(bad.statusCode).toBe(502);
          expect(bad.body).not.toContain('remote text');
        }
      } finally {
        upstream.close();
      }
    });

    it('answers the documented errors', async () => {
      expect((await send(app, 'POST', '/v1/users/alice%40localhost/moved', MOVED, { token: ALL, payload: {} })).statusCode).toBe(400);
      expect((await send(app, 'POST', '/v1/users/alice%40localhost/moved', MOVED, { token: ALL, payload: { newJid: 'alice@localhost' } })).statusCode).toBe(400);
      expect((await send(app, 'POST', '/v1/users/alice%40localhost/moved', MOVED, { payload: { newJid: 'a@b.example' } })).statusCode).toBe(401);
      expect((await send(app, 'GET', '/v1/users/alice%40localhost/moved', MOVED)).statusCode).toBe(401);
      expect((await send(app, 'POST', '/v1/users/alice%40localhost/moved', MOVED, { token: EXPORT_ONLY, payload: { newJid: 'a@b.example' } })).statusCode).toBe(403);
      expect((await send(app, 'GET', '/v1/users/alice%40localhost/moved', MOVED, { token: OTHER_HOST })).statusCode).toBe(403);
      expect((await send(app, 'POST', '/v1/users/nobody%40localhost/moved', MOVED, { token: ALL, payload: { newJid: 'a@b.example' } })).statusCode).toBe(404);
      expect((await send(app, 'GET', '/v1/users/user0%40example.org/moved', MOVED, { token: ALL })).statusCode).toBe(404);
      const lease = await app.ctx.locks.tryAcquire('alice@localhost', 'shared');
      expect((await send(app, 'POST', '/v1/users/alice%40localhost/moved', MOVED, { token: ALL, payload: { newJid: 'a@b.example' } })).statusCode).toBe(409);
      lease?.release();
      const unreachable = await send(app, 'POST', '/v1/users/alice%40localhost/moved', MOVED, {
        token: ALL,
        payload: { newJid: 'a@b.example', importUrl: 'http://127.0.0.2:1/v1/users/a%40b.example/import?token=xpu_x' },
      });
      expect(unreachable.statusCode).toBe(502);
      expect(unreachable.json().detail).not.toContain('xpu_x');
      expect(unreachable.json().detail).toContain(OUTGOING_MESSAGES.failed);
      const refused = await send(app, 'POST', '/v1/users/alice%40localhost/moved', MOVED, {
        token: ALL,
        payload: { newJid: 'a@b.example', importUrl: 'http://127.0.0.1:1/v1/users/a%40b.example/import?token=xpu_x' },
      });
      expect(refused.statusCode).toBe(422);
      expect(refused.json().detail).not.toContain('xpu_x');
      expect(refused.json().detail).toContain(OUTGOING_MESSAGES.refused);
    });
  });

  describe('the edge (test/http/edge.test.ts goes further)', () => {
    const slowDir = mkdtempSync(join(tmpdir(), 'xporta-api-slow-'));
    let slow: App;
    beforeAll(async () => {
      slow = await makeApp(slowDir, { XPORTA_LIMITS__UPLOAD_IDLE_TIMEOUT_MS: '200' });
    });
    afterAll(async () => {
      await slow.close();
      rmSync(slowDir, { recursive: true, force: true });
    });

    it('414 for a path parameter longer than any JID', async () => {
      const long = `${'a'.repeat(9300)}%40localhost`;
      expect((await send(app, 'GET', `/v1/users/${long}/export`, EXPORT, { token: ALL })).statusCode).toBe(414);
      expect((await send(app, 'PUT', `/v1/users/${long}/import`, IMPORT, { token: ALL, headers: xml, payload: doc })).statusCode).toBe(414);
    });

    it('408 for an upload that stalls', async () => {
      const stalled = (): PassThrough => {
        const body = new PassThrough();
        body.write('<server-data');
        return body;
      };
      const user = await send(slow, 'PUT', '/v1/users/alice%40localhost/import?createAccount=true', IMPORT, { token: ALL, headers: xml, payload: stalled() });
      expect(user.statusCode).toBe(408);
      const host = await send(slow, 'PUT', '/v1/hosts/example.org/import', '/v1/hosts/{host}/import', { token: ALL, headers: xml, payload: stalled() });
      expect(host.statusCode).toBe(408);
    });

    it('413 and 415 for JSON bodies', async () => {
      const TOKENS = '/v1/users/{jid}/tokens';
      const big = { scopes: ['export'], pad: 'x'.repeat(70 * 1024) };
      expect((await send(app, 'POST', '/v1/users/alice%40localhost/tokens', TOKENS, { token: ALL, payload: big })).statusCode).toBe(413);
      const octets = { 'content-type': 'application/octet-stream' };
      expect((await send(app, 'POST', '/v1/users/alice%40localhost/tokens', TOKENS, { token: ALL, headers: octets, payload: 'x' })).statusCode).toBe(415);
    });
  });

  it('exercised every path and status of openapi.yaml', () => {
    // import-from-xmpp and xmpp-export need a real XMPP server: test/integration/pull-xmpp.live.test.ts covers their contract,
    // and test/integration/transfer-xmpp.live.test.ts that of /v1/transfers/xmpp.
    // Cancelling a running job needs one that runs long enough: test/faults/durable-jobs.test.ts.
    // The mod_http_xep227-compatible routes: test/http/xep227-compat.test.ts covers their contract.
    expect(contract.missing().filter((k) => !k.includes('/import-from-xmpp') && !k.includes('/v1/xmpp-export') && !k.includes('/v1/transfers/xmpp') && !k.includes(' /xep227/') && k !== 'DELETE /v1/jobs/{id} 202')).toEqual([]);
  });
});
