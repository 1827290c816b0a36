/**
 * The endpoints compatible with Prosody's mod_http_xep227 on the embedded SQLite store: the
 * `stores=` names mapped to data kinds, who may call which path, import semantics, and every
 * response checked against openapi.yaml; the last test asserts that every documented (path,
 * method, status) of `/xep227/…` was seen. test/http/xep227-compat.live.test.ts does the same
 * against a real Prosody and a real client.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import type { ServiceContext } from '../../src/core/context.js';
import { Problem } from '../../src/http/problem.js';
import { buildApp } from '../../src/http/server.js';
import { kindsOfStores, MOD_HTTP_XEP227_STORES, PROSODY_STORES } from '../../src/http/xep227-stores.js';
import { DATA_KINDS, dataKindOf, type DataKind, type DocumentEvent, type UserStart } from '../../src/records/model.js';
import { openStorage } from '../../src/storage/open.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { accountDocument } from '../support/documents.js';
import { ContractChecker } from '../support/openapi.js';

const contract = new ContractChecker();
const ALL = 'xep227-operator-all';
const OTHER_HOST = 'xep227-operator-other-host';
const EXPORT_ONLY = 'xep227-operator-export-only';
const PROBLEM = 'application/problem+json';
const xml = { 'content-type': 'application/xml' };

type App = FastifyInstance & { ctx: ServiceContext };

const EXPORT = '/xep227/export';
const IMPORT = '/xep227/import';
const EXPORT_USER = '/xep227/users/{jid}/export';
const IMPORT_USER = '/xep227/users/{jid}/import';

async function makeApp(dir: string, extra: Record<string, string> = {}): Promise<App> {
  const config = loadConfig({
    env: {
      XPORTA_DATA_DIR: dir,
      XPORTA_LOG_LEVEL: 'silent',
      XPORTA_HOSTS: JSON.stringify({ localhost: { passwordHash: 'SHA-1' }, 'example.org': { passwordHash: 'SHA-1' } }),
      XPORTA_AUTH__USER_TOKEN_SECRET: 'u'.repeat(40),
      XPORTA_AUTH__TOKENS: JSON.stringify([
        { name: 'all', sha256: sha256Hex(ALL), scopes: ['export', 'import', 'admin'], hosts: ['*'] },
        { name: 'other-host', sha256: sha256Hex(OTHER_HOST), scopes: ['export', 'import', 'admin'], hosts: ['example.org'] },
        { name: 'export-only', sha256: sha256Hex(EXPORT_ONLY), scopes: ['export'], hosts: ['*'] },
      ]),
      ...extra,
    },
    cwd: dir,
  });
  const app = buildApp({ config, storage: await openStorage(config), logger: false }) as unknown as App;
  await app.ready();
  return app;
}

interface Sent {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | number | undefined>;
  readonly body: string;
  json<T = Record<string, unknown>>(): T;
}

async function send(
  app: FastifyInstance,
  method: 'GET' | 'PUT',
  url: string,
  template: string,
  options: { token?: string; headers?: Record<string, string>; payload?: string | Readable; remoteAddress?: string } = {},
): Promise<Sent> {
  const res = await app.inject({
    method,
    url,
    ...(options.remoteAddress !== undefined ? { remoteAddress: options.remoteAddress } : {}),
    headers: { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers },
    ...(options.payload !== undefined ? { payload: options.payload as string } : {}),
  });
  const sent: Sent = { statusCode: res.statusCode, headers: res.headers, body: res.body, json: <T>() => JSON.parse(res.body) as T };
  contract.check(method, template, sent);
  return sent;
}

async function events(doc: string): Promise<DocumentEvent[]> {
  const out: DocumentEvent[] = [];
  for await (const e of readDocument(Readable.from([Buffer.from(doc)]))) out.push(e);
  return out;
}

/** The data kinds a document's records belong to, and its user. */
async function contents(doc: string): Promise<{ kinds: Set<DataKind>; user: UserStart }> {
  const all = await events(doc);
  const kinds = new Set<DataKind>();
  let user: UserStart | undefined;
  for (const e of all) {
    if (e.kind === 'user') user = e;
    else if (e.kind !== 'host' && e.kind !== 'host-end' && e.kind !== 'user-end') kinds.add(dataKindOf(e));
  }
  if (!user) throw new Error('no user in the document');
  return { kinds, user };
}

describe('stores= → data kinds', () => {
  it("maps every name mod_http_xep227 knows, and Prosody's offline, blocklist and privacy stores", () => {
    expect(MOD_HTTP_XEP227_STORES.every((name) => name in PROSODY_STORES)).toBe(true);
    expect([...kindsOfStores('accounts')]).toEqual(['credentials']);
    expect([...kindsOfStores('roster,vcard,private,archive')]).toEqual(['roster', 'vcard', 'private', 'archive']);
    expect([...kindsOfStores('pep')]).toEqual(['pep']);
    expect([...kindsOfStores('pep_data')]).toEqual(['pep']);
    expect([...kindsOfStores('pep,pep_data')]).toEqual(['pep']);
    expect([...kindsOfStores('offline,blocklist,privacy')]).toEqual(['offline', 'blocklist', 'privacy']);
    // Every kind but `other` (stores no module knows) can be named.
    expect(new Set(Object.values(PROSODY_STORES))).toEqual(new Set(DATA_KINDS.filter((k) => k !== 'other')));
  });

  it('selects nothing when absent or empty, and skips empty names, as the module does', () => {
    expect(kindsOfStores(undefined).size).toBe(0);
    expect(kindsOfStores('').size).toBe(0);
    expect([...kindsOfStores(',roster,,vcard,')]).toEqual(['roster', 'vcard']);
  });

  it('refuses an unknown name with a 400 naming it and the known names', () => {
    const refused = (raw: string): Problem => {
      try {
        kindsOfStores(raw);
      } catch (err) {
        if (err instanceof Problem) return err;
        throw err;
      }
      throw new Error(`${raw} was accepted`);
    };
    expect(refused(' roster').detail).toContain('a store name that is not known');
    for (const name of ['rosters', 'Roster', 'archive2', 'credentials', '__proto__', 'constructor', 'toString']) {
      const problem = refused(`vcard,${name}`);
      expect(problem.status).toBe(400);
      expect(problem.detail).toContain(`unknown store ${JSON.stringify(name)}`);
      expect(problem.detail).toContain('known: accounts, roster, private, pep, vcard, archive, pep_data, offline, blocklist, privacy');
    }
  });

  it('does not quote back a name that looks like anything but a typo', () => {
    const secret = 'xpt_0123456789abcdefghijklmnopqrstuvwxyz0123456789';
    const problem = ((): Problem => {
      try {
        kindsOfStores(`roster,${secret}`);
      } catch (err) {
        return err as Problem;
      }
      throw new Error('accepted');
    })();
    expect(problem.status).toBe(400);
    expect(problem.detail).not.toContain(secret);
    expect(problem.detail).toContain('a store name that is not known');
  });
});

describe('the mod_http_xep227 endpoints on the embedded SQLite store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-xep227-'));
  const doc = accountDocument({ host: 'localhost', user: 'alice', password: 'correct horse' });
  let app: App;
  let aliceToken: string;
  const nativeExport = async (jid = 'alice%40localhost'): Promise<string> => {
    const res = await app.inject({ method: 'GET', url: `/v1/users/${jid}/export`, headers: { authorization: `Bearer ${ALL}` } });
    expect(res.statusCode).toBe(200);
    return res.body;
  };

  beforeAll(async () => {
    app = await makeApp(dir);
    const created = await app.inject({ method: 'PUT', url: '/v1/users/alice%40localhost/import?createAccount=true', headers: { ...xml, authorization: `Bearer ${ALL}` }, payload: doc });
    expect(created.statusCode).toBe(200);
    aliceToken = app.ctx.auth.mintUserToken({ jid: 'alice@localhost', scopes: ['export', 'import'], ttlSeconds: 600 }).token;
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('GET /xep227/export', () => {
    it("exports the user token's own account with only the kinds stores= names", async () => {
      const res = await send(app, 'GET', `${EXPORT}?stores=roster,vcard`, EXPORT, { token: aliceToken });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/xml/);
      const { kinds, user } = await contents(res.body);
      expect(user.name).toBe('alice');
      expect(user.scram).toEqual([]);
      expect([...kinds].sort()).toEqual(['roster', 'vcard']);
    });

    it('accounts carries the credentials; pep and pep_data both carry PEP; a user token may use ?token= too', async () => {
      const res = await send(app, 'GET', `${EXPORT}?stores=accounts,pep_data&token=${aliceToken}`, EXPORT);
      expect(res.statusCode).toBe(200);
      const { kinds, user } = await contents(res.body);
      expect(user.scram.length).toBeGreaterThan(0);
      expect([...kinds]).toEqual(['pep']);
    });

    it('without stores, the bare account, as the module answers', async () => {
      const res = await send(app, 'GET', EXPORT, EXPORT, { token: aliceToken });
      expect(res.statusCode).toBe(200);
      const { kinds, user } = await contents(res.body);
      expect(kinds.size).toBe(0);
      expect(user).toMatchObject({ name: 'alice', scram: [] });
    });

    it('every store named is the whole account as the native export gives it', async () => {
      const res = await send(app, 'GET', `${EXPORT}?stores=${Object.keys(PROSODY_STORES).join(',')}`, EXPORT, { token: aliceToken });
      const native = await nativeExport();
      expect(res.body).toBe(native.replace(/<other[\s\S]*?<\/other>/, ''));
    });

    it('400 naming an unknown store; 401 without a token; 403 for an operator token, naming the path it should use', async () => {
      const bad = await send(app, 'GET', `${EXPORT}?stores=roster,rosters`, EXPORT, { token: aliceToken });
      expect(bad.statusCode).toBe(400);
      expect(bad.headers['content-type']).toContain(PROBLEM);
      expect(bad.json().detail).toContain('unknown store "rosters"');

      const anonymous = await send(app, 'GET', `${EXPORT}?stores=roster`, EXPORT, { remoteAddress: '127.0.0.51' });
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer/);

      const operator = await send(app, 'GET', `${EXPORT}?stores=roster`, EXPORT, { token: ALL });
      expect(operator.statusCode).toBe(403);
      expect(operator.json().detail).toContain('/xep227/users/{jid}/export');

      const importOnly = app.ctx.auth.mintUserToken({ jid: 'alice@localhost', scopes: ['import'], ttlSeconds: 60 }).token;
      expect((await send(app, 'GET', `${EXPORT}?stores=roster`, EXPORT, { token: importOnly })).statusCode).toBe(403);
    });

    it('404 when the token outlived its account; 409 while an import into it runs', async () => {
      const ghost = app.ctx.auth.mintUserToken({ jid: 'ghost@localhost', scopes: ['export'], ttlSeconds: 60 }).token;
      expect((await send(app, 'GET', EXPORT, EXPORT, { token: ghost })).statusCode).toBe(404);
      const lease = await app.ctx.locks.tryAcquire('alice@localhost', 'exclusive');
      try {
        expect((await send(app, 'GET', `${EXPORT}?stores=roster`, EXPORT, { token: aliceToken })).statusCode).toBe(409);
      } finally {
        lease?.release();
      }
    });
  });

  describe('GET /xep227/users/{jid}/export', () => {
    it('exports the named account for an operator token or its own user token', async () => {
      const res = await send(app, 'GET', '/xep227/users/alice%40localhost/export?stores=blocklist,offline', EXPORT_USER, { token: ALL });
      expect(res.statusCode).toBe(200);
      expect([...(await contents(res.body)).kinds].sort()).toEqual(['blocklist', 'offline']);
      const own = await send(app, 'GET', '/xep227/users/alice%40localhost/export?stores=blocklist,offline', EXPORT_USER, { token: aliceToken });
      expect(own.body).toBe(res.body);
    });

    it('400, 401, 403, 404, 409 and 414 as the native export', async () => {
      expect((await send(app, 'GET', '/xep227/users/alice%40localhost/export?stores=bogus', EXPORT_USER, { token: ALL })).statusCode).toBe(400);
      expect((await send(app, 'GET', '/xep227/users/alice%40localhost/export', EXPORT_USER, { remoteAddress: '127.0.0.52' })).statusCode).toBe(401);
      expect((await send(app, 'GET', '/xep227/users/alice%40localhost/export', EXPORT_USER, { token: OTHER_HOST })).statusCode).toBe(403);
      expect((await send(app, 'GET', '/xep227/users/bob%40localhost/export', EXPORT_USER, { token: aliceToken })).statusCode).toBe(403);
      expect((await send(app, 'GET', '/xep227/users/nobody%40localhost/export', EXPORT_USER, { token: ALL })).statusCode).toBe(404);
      const lease = await app.ctx.locks.tryAcquire('alice@localhost', 'exclusive');
      try {
        expect((await send(app, 'GET', '/xep227/users/alice%40localhost/export', EXPORT_USER, { token: ALL })).statusCode).toBe(409);
      } finally {
        lease?.release();
      }
      expect((await send(app, 'GET', `/xep227/users/${'a'.repeat(9300)}%40localhost/export`, EXPORT_USER, { token: ALL })).statusCode).toBe(414);
    });
  });

  describe('PUT /xep227/import', () => {
    const changed = doc
      .replace('<FN>Alice Example</FN>', '<FN>Alice Imported</FN>')
      .replace("<item jid='carol@example.org' subscription='to'/>", "<item jid='erin@example.org' subscription='to'/>")
      .replace('spammer@spam.example', 'other-spammer@spam.example');

    it('applies only the stores named, merging by default, and leaves every other kind as it was', async () => {
      const before = await nativeExport();
      const res = await send(app, 'PUT', `${IMPORT}?stores=vcard,roster`, IMPORT, { token: aliceToken, headers: xml, payload: changed });
      expect(res.statusCode).toBe(200);
      const report = res.json<{ mode: string; counts: Record<string, number> }>();
      expect(report.mode).toBe('merge');
      expect(Object.keys(report.counts).sort()).toEqual(['roster', 'vcard']);
      const after = await nativeExport();
      expect(after).toContain('Alice Imported');
      // Merged: carol stays beside erin (the module's roster store would have been replaced).
      expect(after).toContain('erin@example.org');
      expect(after).toContain('carol@example.org');
      // The blocklist was not named: unchanged.
      expect(after).toContain("jid='spammer@spam.example'");
      expect(after).not.toContain('other-spammer');
      const untouched = (d: string): string => d.replace(/<query xmlns='jabber:iq:roster'[\s\S]*?<\/query>/, '').replace(/<vCard[\s\S]*?<\/vCard>/, '');
      expect(untouched(after)).toBe(untouched(before));
    });

    it('mode=replace clears the named kinds first; dryRun changes nothing', async () => {
      const dry = await send(app, 'PUT', `${IMPORT}?stores=blocklist&mode=replace&dryRun=true`, IMPORT, { token: aliceToken, headers: xml, payload: changed });
      expect(dry.statusCode).toBe(200);
      expect(dry.json()).toMatchObject({ dryRun: true, mode: 'replace' });
      expect(await nativeExport()).not.toContain('other-spammer');
      const res = await send(app, 'PUT', `${IMPORT}?stores=roster&mode=replace`, IMPORT, { token: aliceToken, headers: xml, payload: changed });
      expect(res.statusCode).toBe(200);
      expect(await nativeExport()).not.toContain('carol@example.org');
    });

    it('imports a document of another JID into the token account, as the module does, without claiming its subscriptions', async () => {
      const bobs = accountDocument({ host: 'example.org', user: 'bob', password: 'pw' }).replace('<FN>Alice Example</FN>', '<FN>Bob Elsewhere</FN>');
      const res = await send(app, 'PUT', `${IMPORT}?stores=vcard,roster`, IMPORT, { token: aliceToken, headers: xml, payload: bobs });
      expect(res.statusCode).toBe(200);
      expect(res.json<{ contactsToAsk: string[] }>().contactsToAsk).toContain('bob@example.net');
      expect(await nativeExport()).toContain('Bob Elsewhere');
    });

    it('without stores, nothing is applied', async () => {
      const before = await nativeExport();
      const res = await send(app, 'PUT', IMPORT, IMPORT, { token: aliceToken, headers: xml, payload: changed });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ counts: {} });
      expect(await nativeExport()).toBe(before);
    });

    it('400 for an unknown store, 401, and 403 for an operator token, each before the body is read, changing nothing', async () => {
      const before = await nativeExport();
      const unread = (): PassThrough => {
        const body = new PassThrough();
        body.write(changed.slice(0, 100));
        return body;
      };
      const bad = await send(app, 'PUT', `${IMPORT}?stores=vcard,vcards`, IMPORT, { token: aliceToken, headers: xml, payload: unread() });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().detail).toContain('unknown store "vcards"');
      expect((await send(app, 'PUT', `${IMPORT}?stores=vcard`, IMPORT, { headers: xml, payload: unread(), remoteAddress: '127.0.0.54' })).statusCode).toBe(401);
      const operator = await send(app, 'PUT', `${IMPORT}?stores=vcard`, IMPORT, { token: ALL, headers: xml, payload: unread() });
      expect(operator.statusCode).toBe(403);
      expect(operator.json().detail).toContain('/xep227/users/{jid}/import');
      const exportOnly = app.ctx.auth.mintUserToken({ jid: 'alice@localhost', scopes: ['export'], ttlSeconds: 60 }).token;
      expect((await send(app, 'PUT', `${IMPORT}?stores=vcard`, IMPORT, { token: exportOnly, headers: xml, payload: unread() })).statusCode).toBe(403);
      expect(await nativeExport()).toBe(before);
    });

    it('404 for a token whose account is gone, 415 for another type, 422 for a document that is not XEP-0227, 409 while another import runs', async () => {
      const ghost = app.ctx.auth.mintUserToken({ jid: 'ghost@localhost', scopes: ['import'], ttlSeconds: 60 }).token;
      expect((await send(app, 'PUT', `${IMPORT}?stores=vcard`, IMPORT, { token: ghost, headers: xml, payload: changed })).statusCode).toBe(404);
      expect((await send(app, 'PUT', `${IMPORT}?stores=vcard`, IMPORT, { token: aliceToken, headers: { 'content-type': 'text/plain' }, payload: changed })).statusCode).toBe(415);
      expect((await send(app, 'PUT', `${IMPORT}?stores=vcard`, IMPORT, { token: aliceToken, headers: xml, payload: '<roster xmlns="jabber:iq:roster"/>' })).statusCode).toBe(422);
      const lease = await app.ctx.locks.tryAcquire('alice@localhost', 'exclusive');
      try {
        expect((await send(app, 'PUT', `${IMPORT}?stores=vcard`, IMPORT, { token: aliceToken, headers: xml, payload: changed })).statusCode).toBe(409);
      } finally {
        lease?.release();
      }
    });
  });

  describe('PUT /xep227/users/{jid}/import', () => {
    it('imports into the named account for an operator token; the account must exist', async () => {
      const res = await send(app, 'PUT', '/xep227/users/alice%40localhost/import?stores=private', IMPORT_USER, { token: ALL, headers: xml, payload: doc.replace('<theme>dark</theme>', '<theme>light</theme>') });
      expect(res.statusCode).toBe(200);
      expect(await nativeExport()).toContain('<theme>light</theme>');
      expect((await send(app, 'PUT', '/xep227/users/nobody%40localhost/import?stores=private', IMPORT_USER, { token: ALL, headers: xml, payload: doc })).statusCode).toBe(404);
    });

    it('400, 401, 403, 409, 414, 415 and 422 as the native import', async () => {
      const url = '/xep227/users/alice%40localhost/import?stores=vcard';
      expect((await send(app, 'PUT', '/xep227/users/alice%40localhost/import?stores=nope', IMPORT_USER, { token: ALL, headers: xml, payload: doc })).statusCode).toBe(400);
      expect((await send(app, 'PUT', '/xep227/users/alice%40localhost/import?stores=vcard&mode=wipe', IMPORT_USER, { token: ALL, headers: xml, payload: doc })).statusCode).toBe(400);
      expect((await send(app, 'PUT', url, IMPORT_USER, { headers: xml, payload: doc, remoteAddress: '127.0.0.55' })).statusCode).toBe(401);
      expect((await send(app, 'PUT', url, IMPORT_USER, { token: EXPORT_ONLY, headers: xml, payload: doc })).statusCode).toBe(403);
      const lease = await app.ctx.locks.tryAcquire('alice@localhost', 'exclusive');
      try {
        expect((await send(app, 'PUT', url, IMPORT_USER, { token: ALL, headers: xml, payload: doc })).statusCode).toBe(409);
      } finally {
        lease?.release();
      }
      expect((await send(app, 'PUT', `/xep227/users/${'a'.repeat(9300)}%40localhost/import`, IMPORT_USER, { token: ALL, headers: xml, payload: doc })).statusCode).toBe(414);
      expect((await send(app, 'PUT', url, IMPORT_USER, { token: ALL, headers: { 'content-type': 'text/plain' }, payload: doc })).statusCode).toBe(415);
      expect((await send(app, 'PUT', url, IMPORT_USER, { token: ALL, headers: xml, payload: doc.replace('</user>', "</user><user name='mallory'/>") })).statusCode).toBe(422);
    });
  });

  describe('limits and failing storage', () => {
    it('408 for a stalled upload, 413 for an oversize one, 429 when every import slot is taken and after repeated failed authentication', async () => {
      const limitedDir = mkdtempSync(join(tmpdir(), 'xporta-xep227-limited-'));
      const limited = await makeApp(limitedDir, { XPORTA_LIMITS__MAX_UPLOAD_BYTES: String(64 * 1024), XPORTA_LIMITS__UPLOAD_IDLE_TIMEOUT_MS: '200', XPORTA_AUTH__FAILED_AUTH_PER_MINUTE: '2' });
      try {
        await limited.inject({ method: 'PUT', url: '/v1/users/alice%40localhost/import?createAccount=true', headers: { ...xml, authorization: `Bearer ${ALL}` }, payload: doc });
        const own = limited.ctx.auth.mintUserToken({ jid: 'alice@localhost', scopes: ['import'], ttlSeconds: 60 }).token;
        const stalled = new PassThrough();
        stalled.write('<server-data');
        expect((await send(limited, 'PUT', `${IMPORT}?stores=vcard`, IMPORT, { token: own, headers: xml, payload: stalled })).statusCode).toBe(408);
        const stalledToo = new PassThrough();
        stalledToo.write('<server-data');
        expect((await send(limited, 'PUT', '/xep227/users/alice%40localhost/import?stores=vcard', IMPORT_USER, { token: ALL, headers: xml, payload: stalledToo })).statusCode).toBe(408);
        const big = accountDocument({ host: 'localhost', user: 'alice', password: 'x', archiveCount: 400 });
        expect((await send(limited, 'PUT', `${IMPORT}?stores=archive`, IMPORT, { token: own, headers: xml, payload: big })).statusCode).toBe(413);
        expect((await send(limited, 'PUT', '/xep227/users/alice%40localhost/import?stores=archive', IMPORT_USER, { token: ALL, headers: xml, payload: big })).statusCode).toBe(413);
        const held = [limited.ctx.importSlots.tryTake(), limited.ctx.importSlots.tryTake()];
        try {
          expect((await send(limited, 'PUT', `${IMPORT}?stores=vcard`, IMPORT, { token: own, headers: xml, payload: doc })).statusCode).toBe(429);
          expect((await send(limited, 'PUT', '/xep227/users/alice%40localhost/import?stores=vcard', IMPORT_USER, { token: ALL, headers: xml, payload: doc })).statusCode).toBe(429);
        } finally {
          for (const slot of held) slot?.release();
        }
        // Past auth.failedAuthPerMinute failures, 429 with Retry-After.
        await send(limited, 'GET', EXPORT, EXPORT, { token: 'wrong-1' });
        await send(limited, 'GET', EXPORT, EXPORT, { token: 'wrong-2' });
        const limitedOut = await send(limited, 'GET', EXPORT, EXPORT, { token: 'wrong-3' });
        expect(limitedOut.statusCode).toBe(429);
        expect(Number(limitedOut.headers['retry-after'])).toBeGreaterThan(0);
        expect((await send(limited, 'GET', '/xep227/users/alice%40localhost/export', EXPORT_USER, { token: 'wrong-4' })).statusCode).toBe(429);
      } finally {
        await limited.close();
        rmSync(limitedDir, { recursive: true, force: true });
      }
    });

    it('503 when the database is unreachable', async () => {
      const downDir = mkdtempSync(join(tmpdir(), 'xporta-xep227-down-'));
      const down = await makeApp(downDir, { XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'postgres', host: '127.0.0.1', port: 1, database: 'none' }) });
      try {
        const own = down.ctx.auth.mintUserToken({ jid: 'alice@localhost', scopes: ['import'], ttlSeconds: 60 }).token;
        const put = await send(down, 'PUT', `${IMPORT}?stores=vcard`, IMPORT, { token: own, headers: xml, payload: doc });
        expect(put.statusCode).toBe(503);
        expect(put.headers['retry-after']).toMatch(/^\d+$/);
        expect((await send(down, 'PUT', '/xep227/users/alice%40localhost/import?stores=vcard', IMPORT_USER, { token: ALL, headers: xml, payload: doc })).statusCode).toBe(503);
      } finally {
        await down.close();
        rmSync(downDir, { recursive: true, force: true });
      }
    });

    it('507 when the store has no space left', async () => {
      const fullDir = mkdtempSync(join(tmpdir(), 'xporta-xep227-full-'));
      const full = await makeApp(fullDir, { XPORTA_STORAGE: JSON.stringify({ type: 'prosody-files', path: 'store' }) });
      try {
        const created = await full.inject({ method: 'PUT', url: '/v1/users/alice%40localhost/import?createAccount=true', headers: { ...xml, authorization: `Bearer ${ALL}` }, payload: doc });
        expect(created.statusCode).toBe(200);
        // A full disk as the file store meets it while staging (as in test/http/api.test.ts).
        (full.ctx.storage as unknown as { options: { faults?: object } }).options.faults = {
          beforeStage: () => {
            throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
          },
        };
        const own = full.ctx.auth.mintUserToken({ jid: 'alice@localhost', scopes: ['import'], ttlSeconds: 60 }).token;
        expect((await send(full, 'PUT', `${IMPORT}?stores=vcard`, IMPORT, { token: own, headers: xml, payload: doc })).statusCode).toBe(507);
        expect((await send(full, 'PUT', '/xep227/users/alice%40localhost/import?stores=vcard', IMPORT_USER, { token: ALL, headers: xml, payload: doc })).statusCode).toBe(507);
      } finally {
        await full.close();
        rmSync(fullDir, { recursive: true, force: true });
      }
    });
  });

  it('audits each request as export or import, with the account, kinds and actor, never the token', () => {
    app.ctx.audit.flush();
    const text = readFileSync(join(dir, 'audit.log'), 'utf8');
    expect(text).not.toContain(aliceToken);
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; account?: string; kinds?: string[]; mode?: string; actor: { kind: string; jid?: string }; outcome: string; status: number });
    expect(lines).toContainEqual(expect.objectContaining({ action: 'export', account: 'alice@localhost', kinds: ['roster', 'vcard'], actor: expect.objectContaining({ kind: 'user', jid: 'alice@localhost' }), outcome: 'ok' }));
    expect(lines).toContainEqual(expect.objectContaining({ action: 'import', account: 'alice@localhost', kinds: ['vcard', 'roster'], mode: 'merge', outcome: 'ok' }));
    expect(lines).toContainEqual(expect.objectContaining({ action: 'import', account: 'alice@localhost', kinds: ['private'], actor: expect.objectContaining({ kind: 'operator' }), outcome: 'ok' }));
    expect(lines).toContainEqual(expect.objectContaining({ action: 'import', actor: expect.objectContaining({ kind: 'operator' }), outcome: 'refused', status: 403 }));
  });

  it('exercised every path and status of /xep227/… in openapi.yaml', () => {
    expect(contract.missing().filter((k) => k.includes(' /xep227/'))).toEqual([]);
  });
});
