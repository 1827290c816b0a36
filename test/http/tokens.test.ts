/**
 * Issue 14's token, rate-limit, file-mode, secrecy and audit guarantees, against the real app
 * (Fastify inject) on a real SQLite store and token store in a fresh data directory.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.js';
import { Authenticator } from '../../src/core/auth/authenticator.js';
import type { ServiceContext } from '../../src/core/context.js';
import { buildApp } from '../../src/http/server.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import { openStorage } from '../../src/storage/open.js';
import { accountDocument, deriveScram } from '../support/documents.js';

const ADMIN = 'operator-admin-secret-value-0123456789';
const KEY = 'k'.repeat(40);
const OLD_KEY = 'o'.repeat(40);
const xml = { 'content-type': 'application/xml' };

type App = FastifyInstance & { ctx: ServiceContext };
type LightResponse = Awaited<ReturnType<typeof exportAlice>>;

const dirs: string[] = [];
const apps: App[] = [];

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-tokens-'));
  dirs.push(dir);
  return dir;
}

function configFor(dir: string, extra: Record<string, string> = {}): Config {
  return loadConfig({
    env: {
      XPORTA_DATA_DIR: dir,
      XPORTA_LOG_LEVEL: 'info',
      XPORTA_HOSTS: JSON.stringify({ localhost: { passwordHash: 'SHA-1' }, 'example.org': { passwordHash: 'SHA-1' } }),
      XPORTA_AUTH__USER_TOKEN_SECRET: KEY,
      XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'admin', sha256: sha256Hex(ADMIN), scopes: ['export', 'import', 'admin'], hosts: ['*'] }]),
      ...extra,
    },
    cwd: dir,
  });
}

/** Everything written to it, as text. */
class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8');
    done();
  }
}

async function makeApp(dir: string, extra: Record<string, string> = {}, logStream?: Capture): Promise<App> {
  const config = configFor(dir, extra);
  const app = buildApp({ config, storage: await openStorage(config), ...(logStream ? { logStream } : { logger: false }) }) as unknown as App;
  await app.ready();
  apps.push(app);
  return app;
}

async function closeApp(app: App): Promise<void> {
  apps.splice(apps.indexOf(app), 1);
  await app.close();
}

afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

async function createAlice(app: App): Promise<void> {
  const res = await app.inject({
    method: 'PUT',
    url: '/v1/users/alice%40localhost/import?createAccount=true',
    headers: { ...bearer(ADMIN), ...xml },
    payload: accountDocument({ host: 'localhost', user: 'alice', password: 'pw' }),
  });
  expect(res.statusCode).toBe(200);
}

async function mintUser(app: App, body: object = {}): Promise<{ token: string; jti: string }> {
  const res = await app.inject({ method: 'POST', url: '/v1/users/alice%40localhost/tokens', headers: bearer(ADMIN), payload: body });
  expect(res.statusCode).toBe(201);
  return res.json<{ token: string; jti: string }>();
}

function exportAlice(app: App, token: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'GET', url: '/v1/users/alice%40localhost/export', headers: { ...bearer(token), ...headers } });
}

describe('tokens', () => {
  it('a revoked user token fails at once', async () => {
    const app = await makeApp(freshDir());
    await createAlice(app);
    const { token, jti } = await mintUser(app);
    expect((await exportAlice(app, token)).statusCode).toBe(200);
    const revoked = await app.inject({ method: 'DELETE', url: `/v1/users/alice%40localhost/tokens/${jti}`, headers: bearer(ADMIN) });
    expect(revoked.statusCode).toBe(204);
    const res = await exportAlice(app, token);
    expect(res.statusCode).toBe(401);
    expect(res.json().detail).toBe('token revoked');
  });

  it('a rotated operator token works and the old one does not; a revoked one fails at once', async () => {
    const app = await makeApp(freshDir());
    await createAlice(app);
    const created = (await app.inject({ method: 'POST', url: '/v1/tokens', headers: bearer(ADMIN), payload: { name: 'panel', scopes: ['export'] } })).json<{ id: string; token: string }>();
    expect((await exportAlice(app, created.token)).statusCode).toBe(200);
    const rotated = (await app.inject({ method: 'POST', url: `/v1/tokens/${created.id}/rotate`, headers: bearer(ADMIN) })).json<{ token: string }>();
    expect((await exportAlice(app, created.token)).statusCode).toBe(401);
    expect((await exportAlice(app, rotated.token)).statusCode).toBe(200);
    expect((await app.inject({ method: 'DELETE', url: `/v1/tokens/${created.id}`, headers: bearer(ADMIN) })).statusCode).toBe(204);
    expect((await exportAlice(app, rotated.token)).statusCode).toBe(401);
  });

  it('a one-time link used once is refused after a restart on the same data directory', async () => {
    const dir = freshDir();
    const first = await makeApp(dir);
    await createAlice(first);
    const { token } = first.ctx.auth.mintUserToken({ jid: 'alice@localhost', scopes: ['export'], ttlSeconds: 600, singleUse: true });
    expect((await exportAlice(first, token)).statusCode).toBe(200);
    expect((await exportAlice(first, token)).json().detail).toBe('token already used');
    await closeApp(first);

    const second = await makeApp(dir);
    const res = await exportAlice(second, token);
    expect(res.statusCode).toBe(401);
    expect(res.json().detail).toBe('token already used');
    // A link minted but not used before the restart still works once.
    const { token: unused } = second.ctx.auth.mintUserToken({ jid: 'alice@localhost', scopes: ['export'], ttlSeconds: 600, singleUse: true });
    await closeApp(second);
    const third = await makeApp(dir);
    expect((await exportAlice(third, unused)).statusCode).toBe(200);
  });

  it('a user token with a suffix, trailing junk or a re-encoded payload is refused', async () => {
    const app = await makeApp(freshDir());
    await createAlice(app);
    const { token } = await mintUser(app);
    expect((await exportAlice(app, token)).statusCode).toBe(200);
    const [payload = '', signature = ''] = token.slice('xpu_'.length).split('.');
    const variants = [`${token}.x`, `${token}.`, `${token}x`, `${token}=`, `xpu_${payload}=.${signature}`, `xpu_${payload}.${signature}.${signature}`];
    for (const variant of variants) {
      const res = await exportAlice(app, variant);
      expect([variant, res.statusCode]).toEqual([variant, 401]);
    }
    // In the query too, where a link carries it.
    const query = await app.inject({ method: 'GET', url: `/v1/users/alice%40localhost/export?token=${encodeURIComponent(`${token}.x`)}` });
    expect(query.statusCode).toBe(401);
  });

  it('accepts tokens signed with the previous user-token key while it is configured, and only then', async () => {
    const dir = freshDir();
    const old = new Authenticator([], OLD_KEY, 3600);
    const { token } = old.mintUserToken({ jid: 'alice@localhost', scopes: ['export'], ttlSeconds: 600 });
    const withoutGrace = await makeApp(dir);
    await createAlice(withoutGrace);
    expect((await exportAlice(withoutGrace, token)).statusCode).toBe(401);
    await closeApp(withoutGrace);
    const withGrace = await makeApp(dir, { XPORTA_AUTH__PREVIOUS_USER_TOKEN_SECRET: OLD_KEY });
    expect((await exportAlice(withGrace, token)).statusCode).toBe(200);
    // New tokens are signed with the current key only.
    const fresh = await mintUser(withGrace);
    expect(new Authenticator([], KEY, 3600).authenticate(fresh.token)).toMatchObject({ kind: 'user' });
  });

  it('a reload takes new config tokens and keys without a restart', async () => {
    const app = await makeApp(freshDir());
    await createAlice(app);
    const other = 'another-operator-secret-0123456789';
    expect((await exportAlice(app, other)).statusCode).toBe(401);
    app.ctx.auth.reload([{ name: 'other', sha256: sha256Hex(other), scopes: ['export'], hosts: ['*'] }], KEY);
    expect((await exportAlice(app, other)).statusCode).toBe(200);
    expect((await exportAlice(app, ADMIN)).statusCode).toBe(401);
  });
});

describe('rate limiting', () => {
  it('behind a trusted proxy, 1,000 bad tokens from one forwarded address stop no valid token', async () => {
    const app = await makeApp(freshDir(), { XPORTA_TRUSTED_PROXIES: '["127.0.0.1"]' });
    await createAlice(app);
    const attacker = { 'x-forwarded-for': '203.0.113.7' };
    const statuses = new Map<number, number>();
    for (let i = 0; i < 1000; i++) {
      const res = await exportAlice(app, `bad-token-${i}`, attacker);
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    }
    // The first failures are 401; once over failedAuthPerMinute (20) they are 429.
    expect(statuses.get(401)).toBe(20);
    expect(statuses.get(429)).toBe(980);
    // Another client behind the same proxy is not affected.
    expect((await exportAlice(app, ADMIN, { 'x-forwarded-for': '198.51.100.9' })).statusCode).toBe(200);
    // Nor is a valid token from the attacking address itself.
    expect((await exportAlice(app, ADMIN, attacker)).statusCode).toBe(200);
    // But the attacking address's next failure is still throttled.
    const next = await exportAlice(app, 'bad-token-x', attacker);
    expect(next.statusCode).toBe(429);
    expect(Number(next.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    const app = await makeApp(freshDir(), { XPORTA_AUTH__FAILED_AUTH_PER_MINUTE: '3' });
    for (let i = 0; i < 3; i++) {
      await app.inject({ method: 'GET', url: '/v1/tokens', headers: { ...bearer(`bad-${i}`), 'x-forwarded-for': `192.0.2.${i}` }, remoteAddress: '10.1.1.1' });
    }
    // A forged header does not spread the failures over made-up addresses.
    const res = await app.inject({ method: 'GET', url: '/v1/tokens', headers: { ...bearer('bad-3'), 'x-forwarded-for': '192.0.2.99' }, remoteAddress: '10.1.1.1' });
    expect(res.statusCode).toBe(429);
  });

  it('counts failures per attempted token id too', async () => {
    const app = await makeApp(freshDir(), { XPORTA_AUTH__FAILED_AUTH_PER_MINUTE: '3', XPORTA_TRUSTED_PROXIES: '["127.0.0.1"]' });
    await createAlice(app);
    const { token } = await mintUser(app);
    const forged = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const codes: number[] = [];
    // Each attempt from a different address: only the per-jti count can throttle them.
    for (let i = 0; i < 4; i++) codes.push((await exportAlice(app, forged, { 'x-forwarded-for': `198.51.100.${i + 1}` })).statusCode);
    expect(codes).toEqual([401, 401, 401, 429]);
    // The genuine token with that jti still works.
    expect((await exportAlice(app, token, { 'x-forwarded-for': '198.51.100.50' })).statusCode).toBe(200);
  });

  it('answers 429 with Retry-After once a token spends its per-minute quota, per token', async () => {
    const app = await makeApp(freshDir(), { XPORTA_AUTH__REQUESTS_PER_MINUTE_PER_TOKEN: '5' });
    const list = (token: string) => app.inject({ method: 'GET', url: '/v1/tokens', headers: bearer(token) });
    for (let i = 0; i < 5; i++) expect((await list(ADMIN)).statusCode).toBe(200);
    const over = await list(ADMIN);
    expect(over.statusCode).toBe(429);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect(over.headers['retry-after']).toBeDefined();
  });
});

/** Every file under `dir`, with its permission bits. */
function filesUnder(dir: string): { path: string; mode: number }[] {
  const out: { path: string; mode: number }[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else out.push({ path, mode: statSync(path).mode & 0o777 });
  }
  return out;
}

function hostDocument(host: string, users: readonly string[]): string {
  return `<server-data xmlns='urn:xmpp:pie:0'><host jid='${host}'>${users.map((u) => `<user name='${u}' password='pw-${u}'/>`).join('')}</host></server-data>`;
}

describe('files and spools', () => {
  it('every file xporta creates is 0600, or 0640 when configured', async () => {
    for (const [mode, expected] of [
      ['0600', 0o600],
      ['0640', 0o640],
    ] as const) {
      const dir = freshDir();
      const app = await makeApp(dir, { XPORTA_FILES__MODE: mode });
      await createAlice(app);
      await mintUser(app);
      await app.inject({ method: 'POST', url: '/v1/tokens', headers: bearer(ADMIN), payload: { name: 'panel' } });
      const host = await app.inject({ method: 'PUT', url: '/v1/hosts/example.org/import?createAccount=true', headers: { ...bearer(ADMIN), ...xml }, payload: hostDocument('example.org', ['h1', 'h2']) });
      expect(host.statusCode).toBe(200);
      const files = filesUnder(dir);
      expect(files.map((f) => f.path.slice(dir.length + 1))).toEqual(expect.arrayContaining(['prosody.sqlite', 'xporta-state.sqlite', 'audit.log']));
      for (const file of files) expect([file.path, file.mode.toString(8)]).toEqual([file.path, expected.toString(8)]);
      await closeApp(app);
    }
  });

  it('two concurrent host imports with the same X-Request-Id both complete', async () => {
    const app = await makeApp(freshDir());
    const put = (users: string[]) =>
      app.inject({
        method: 'PUT',
        url: '/v1/hosts/example.org/import?createAccount=true',
        headers: { ...bearer(ADMIN), ...xml, 'x-request-id': 'same-id' },
        payload: hostDocument('example.org', users),
      });
    const [a, b] = await Promise.all([put(['a1', 'a2']), put(['b1', 'b2'])]);
    for (const [res, users] of [
      [a, ['a1@example.org', 'a2@example.org']],
      [b, ['b1@example.org', 'b2@example.org']],
    ] as const) {
      expect(res.statusCode).toBe(200);
      const body = res.json<{ users: { user: string; error?: string }[]; progress: { done: number; failed: number } }>();
      expect(body.progress).toMatchObject({ done: 2, failed: 0 });
      expect(body.users.map((u) => u.user).sort()).toEqual(users);
    }
    for (const user of ['a1', 'a2', 'b1', 'b2']) {
      expect((await app.inject({ method: 'GET', url: `/v1/users/${user}%40example.org/export`, headers: bearer(ADMIN) })).statusCode).toBe(200);
    }
  });
});

/** Which of `secrets` occur in `text` (raw, or as they would appear JSON- or URL-escaped). */
function leaked(text: string, secrets: Readonly<Record<string, string>>): string[] {
  return Object.entries(secrets)
    .filter(([, value]) => [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value)].some((form) => text.includes(form)))
    .map(([name]) => name);
}

describe('no secrets in logs or response bodies', () => {
  it('the leak check finds a planted secret', () => {
    const secrets = { token: 'xpu_planted.secret', key: 'c2NyYW0ta2V5Lw==' };
    expect(leaked('{"msg":"request","url":"/x?token=xpu_planted.secret"}', secrets)).toEqual(['token']);
    expect(leaked('{"key":"c2NyYW0ta2V5Lw=="}', secrets)).toEqual(['key']);
    expect(leaked('nothing here', secrets)).toEqual([]);
  });

  it('a whole session logs and answers no token, password or SCRAM key', async () => {
    const dir = freshDir();
    const log = new Capture();
    const app = await makeApp(dir, {}, log);
    const password = 'correct horse battery staple';
    const scram = deriveScram('another-password', 'SCRAM-SHA-1');
    const bodies: string[] = [];
    const track = async (p: Promise<LightResponse>): Promise<LightResponse> => {
      const res = await p;
      bodies.push(res.body, JSON.stringify(res.headers));
      return res;
    };

    // An import with a plain password, and one with SCRAM keys.
    await track(
      app.inject({
        method: 'PUT',
        url: '/v1/users/bob%40localhost/import?createAccount=true',
        headers: { ...bearer(ADMIN), ...xml },
        payload: `<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='bob' password='${password}'/></host></server-data>`,
      }),
    );
    await track(
      app.inject({
        method: 'PUT',
        url: '/v1/users/carol%40localhost/import?createAccount=true&dryRun=true',
        headers: { ...bearer(ADMIN), ...xml },
        payload: `<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='carol'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>4096</iter-count><salt>${scram.salt}</salt><server-key>${scram.serverKey}</server-key><stored-key>${scram.storedKey}</stored-key></scram-credentials></user></host></server-data>`,
      }),
    );
    // Minting: the token is in its own answer only (the one place it is meant to be).
    const minted = await app.inject({ method: 'POST', url: '/v1/users/bob%40localhost/tokens', headers: bearer(ADMIN), payload: { scopes: ['export'] } });
    const userToken = minted.json<{ token: string }>().token;
    const created = await app.inject({ method: 'POST', url: '/v1/tokens', headers: bearer(ADMIN), payload: { name: 'panel' } });
    const storeToken = created.json<{ token: string }>().token;
    // An export (its document is the data asked for; the other answers and the logs are checked).
    const exported = await app.inject({ method: 'GET', url: `/v1/users/bob%40localhost/export?token=${encodeURIComponent(userToken)}` });
    expect(exported.statusCode).toBe(200);
    // Errors with tokens in the query and in headers.
    await track(app.inject({ method: 'GET', url: `/v1/users/bob%40localhost/export?token=${encodeURIComponent(userToken)}` }));
    await track(app.inject({ method: 'GET', url: `/v1/users/alice%40localhost/export?token=${encodeURIComponent(userToken)}` }));
    await track(app.inject({ method: 'GET', url: `/no/such/route?token=${encodeURIComponent(storeToken)}` }));
    await track(app.inject({ method: 'GET', url: `/v1/users/bob%40localhost/export?token=${encodeURIComponent(ADMIN)}` }));
    await track(app.inject({ method: 'GET', url: '/v1/users/bob%40localhost/export', headers: bearer(`${userToken}.junk`) }));
    await track(app.inject({ method: 'PUT', url: '/v1/users/bob%40localhost/import', headers: { ...bearer(storeToken), ...xml }, payload: '<not-xml' }));
    await track(app.inject({ method: 'GET', url: '/v1/tokens', headers: bearer(storeToken) }));
    await track(app.inject({ method: 'GET', url: '/v1/users/bob%40localhost/tokens', headers: bearer(ADMIN) }));
    await closeApp(app);

    const secrets = { admin: ADMIN, userToken, storeToken, password, storedKey: scram.storedKey, serverKey: scram.serverKey, userTokenKey: KEY };
    expect(log.text.length).toBeGreaterThan(0);
    expect(leaked(log.text, secrets)).toEqual([]);
    expect(leaked(bodies.join('\n'), secrets)).toEqual([]);
    const audit = readFileSync(join(dir, 'audit.log'), 'utf8');
    expect(leaked(audit, secrets)).toEqual([]);
    // Nothing under the data directory holds a token or the password in the clear either.
    for (const { path } of filesUnder(dir)) {
      const bytes = readFileSync(path).toString('latin1');
      expect([path, leaked(bytes, { admin: ADMIN, userToken, storeToken, password })]).toEqual([path, []]);
    }
  });
});

describe('audit log', () => {
  it('has one line per privileged action, naming who, what, which account, kinds, counts and outcome', async () => {
    const dir = freshDir();
    const app = await makeApp(dir);
    await createAlice(app); // 1 import
    await app.inject({ method: 'PUT', url: '/v1/users/alice%40localhost/import?mode=merge&dryRun=true&include=roster', headers: { ...bearer(ADMIN), ...xml }, payload: accountDocument({ host: 'localhost', user: 'alice', password: 'pw' }) }); // 2 dry run
    const { token, jti } = await mintUser(app); // 3 mint
    await exportAlice(app, token); // 4 export by the user token
    await exportAlice(app, 'not-a-token'); // 5 refused export
    await app.inject({ method: 'DELETE', url: `/v1/users/alice%40localhost/tokens/${jti}`, headers: bearer(ADMIN) }); // 6 revoke
    const created = (await app.inject({ method: 'POST', url: '/v1/tokens', headers: bearer(ADMIN), payload: { name: 'panel' } })).json<{ id: string }>(); // 7
    await app.inject({ method: 'POST', url: `/v1/tokens/${created.id}/rotate`, headers: bearer(ADMIN) }); // 8
    await app.inject({ method: 'DELETE', url: `/v1/tokens/${created.id}`, headers: bearer(ADMIN) }); // 9
    await app.inject({ method: 'PUT', url: '/v1/hosts/example.org/import?createAccount=true', headers: { ...bearer(ADMIN), ...xml }, payload: hostDocument('example.org', ['h1']) }); // 10
    await app.inject({ method: 'GET', url: '/v1/hosts/example.org/export', headers: bearer(ADMIN) }); // 11
    // 12 and 13: an async host import is accepted, then its job's end gets a line of its own.
    const accepted = await app.inject({ method: 'PUT', url: '/v1/hosts/example.org/import?createAccount=true&async=true', headers: { ...bearer(ADMIN), ...xml }, payload: hostDocument('example.org', ['h2']) });
    expect(accepted.statusCode).toBe(202);
    const jobId = accepted.json<{ id: string }>().id;
    for (let i = 0; i < 100; i++) {
      const job = await app.inject({ method: 'GET', url: `/v1/jobs/${jobId}`, headers: bearer(ADMIN) });
      if (job.json<{ state: string }>().state !== 'running') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await app.inject({ method: 'GET', url: '/health' }); // not audited
    await closeApp(app);

    const lines = readFileSync(join(dir, 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.every((l) => l.audit === true)).toBe(true);
    expect(lines.map((l) => `${String(l.action)} ${String(l.outcome)}`)).toEqual([
      'import ok',
      'import ok',
      'user-token-mint ok',
      'export ok',
      'export refused',
      'user-token-revoke ok',
      'operator-token-create ok',
      'operator-token-rotate ok',
      'operator-token-revoke ok',
      'host-import ok',
      'host-export ok',
      'host-import accepted',
      'host-import ok',
    ]);
    expect(lines[12]).toMatchObject({ host: 'example.org', counts: { users: 1, failed: 0 }, requestId: lines[11]?.requestId });
    expect(lines[0]).toMatchObject({ actor: { kind: 'operator', name: 'admin' }, account: 'alice@localhost', dryRun: false, mode: 'replace', counts: { archive: 3, created: 1 }, status: 200 });
    expect(lines[1]).toMatchObject({ dryRun: true, mode: 'merge', kinds: ['roster'] });
    expect(lines[2]).toMatchObject({ account: 'alice@localhost', target: jti });
    expect(lines[3]).toMatchObject({ actor: { kind: 'user', jid: 'alice@localhost', jti }, account: 'alice@localhost' });
    expect(lines[4]).toMatchObject({ actor: { kind: 'anonymous' }, status: 401, reason: expect.stringMatching(/unknown token/) });
    expect(lines[6]).toMatchObject({ target: created.id });
    expect(lines[9]).toMatchObject({ host: 'example.org', counts: { users: 1, failed: 0 } });
    for (const line of lines) expect(typeof line.requestId).toBe('string');
  });
});
