/**
 * The component's parts that need no server: backoff, XEP-0356 advertisement parsing, the
 * XEP-0050 session rules, and user tokens in link queries.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { buildApp, REQUEST_SERIALIZER } from '../../src/http/server.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import { openStorage } from '../../src/storage/open.js';
import { CommandError, CommandRegistry, type Command } from '../../src/xmpp/adhoc.js';
import { userLink } from '../../src/xmpp/commands.js';
import { backoffDelay } from '../../src/xmpp/connection.js';
import { movedNotification } from '../../src/core/move.js';
import { parsePrivilege, PrivilegeTable } from '../../src/xmpp/privilege.js';
import { NS, x, type Stanza } from '../../src/xmpp/ltx.js';
import { accountDocument } from '../support/documents.js';
import type { App } from '../support/xmpp-component.js';

describe('backoffDelay', () => {
  const options = { initialMs: 1000, maxMs: 60_000 };

  it('doubles per failure up to the cap, jittered over the upper half', () => {
    expect(backoffDelay(0, options, () => 0)).toBe(500);
    expect(backoffDelay(0, options, () => 1)).toBe(1000);
    expect(backoffDelay(3, options, () => 0)).toBe(4000);
    expect(backoffDelay(3, options, () => 1)).toBe(8000);
    expect(backoffDelay(50, options, () => 1)).toBe(60_000);
    expect(backoffDelay(50, options, () => 0)).toBe(30_000);
  });

  it('spreads retries', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(4, options)));
    expect(delays.size).toBeGreaterThan(10);
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(8000);
  });
});

describe('XEP-0356 advertisements', () => {
  // What mod_privilege (prosody-modules 2023) sends: <namespace/> elements never closed.
  const nested = (from: string): Stanza =>
    x(
      'message',
      { from, to: 'xporta.localhost' },
      x(
        'privilege',
        { xmlns: NS.privilege },
        x('perm', { access: 'roster', type: 'both' }),
        x('perm', { access: 'message', type: 'outgoing' }),
        x('perm', { access: 'presence', type: 'roster' }),
        x(
          'perm',
          { access: 'iq' },
          x('namespace', { ns: 'vcard-temp', type: 'both' }, x('namespace', { ns: NS.pubsub, type: 'set' }, x('namespace', { ns: 'urn:xmpp:blocking', type: 'get' }))),
        ),
      ),
    );

  it('reads nested namespaces', () => {
    const perms = parsePrivilege(nested('localhost'));
    expect(perms).toMatchObject({ roster: 'both', message: 'outgoing', presence: 'roster' });
    expect(Object.fromEntries(perms?.iq ?? [])).toEqual({ 'vcard-temp': 'both', [NS.pubsub]: 'set', 'urn:xmpp:blocking': 'get' });
  });

  it('keeps permissions per host, from bare domains only', () => {
    const table = new PrivilegeTable();
    expect(table.accept(nested('localhost'))).toBe('localhost');
    expect(table.accept(nested('mallory@localhost'))).toBeUndefined();
    expect(table.accept(x('message', { from: 'example.test' }, x('body', {}, 'hi')))).toBeUndefined();
    expect(table.roster('localhost', 'set')).toBe(true);
    expect(table.iq('localhost', NS.pubsub, 'get')).toBe(false);
    expect(table.iq('localhost', NS.pubsub, 'set')).toBe(true);
    expect(table.roster('example.test', 'get')).toBe(false);
    table.clear();
    expect(table.roster('localhost', 'get')).toBe(false);
  });
});

describe('XEP-0050 sessions', () => {
  const twoStage: Command<{ n: number }> = {
    node: 'count',
    name: 'Count',
    async run({ state }) {
      if (!state) return { status: 'executing', state: { n: 1 }, actions: ['next', 'complete'], form: { type: 'form', fields: [] } };
      return { status: 'completed', notes: [{ type: 'info', text: `stage ${state.n + 1}` }] };
    },
  };
  const registry = new CommandRegistry();
  registry.add(twoStage);
  const cmd = (attrs: Record<string, string>): Stanza => x('command', { xmlns: NS.commands, ...attrs });
  const failure = async (user: string, request: Stanza): Promise<CommandError> => {
    const err = await registry.handle(user, request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    return err as CommandError;
  };

  it('runs stages in one session and closes it when completed', async () => {
    const first = await registry.handle('a@h', cmd({ node: 'count' }));
    expect(first.attrs.status).toBe('executing');
    expect(first.getChild('actions')?.attrs.execute).toBe('next');
    const sessionid = first.attrs.sessionid ?? '';
    const second = await registry.handle('a@h', cmd({ node: 'count', sessionid, action: 'next' }));
    expect(second.attrs.status).toBe('completed');
    expect(second.getChildText('note')).toBe('stage 2');
    expect((await failure('a@h', cmd({ node: 'count', sessionid, action: 'next' }))).commandCondition).toBe('bad-sessionid');
  });

  it('answers the protocol errors', async () => {
    expect((await failure('a@h', cmd({ node: 'nope' }))).condition).toBe('item-not-found');
    expect((await failure('a@h', cmd({ node: 'count', action: 'dance' }))).commandCondition).toBe('malformed-action');
    expect((await failure('a@h', cmd({ node: 'count', action: 'next' }))).commandCondition).toBe('bad-sessionid');
    const first = await registry.handle('a@h', cmd({ node: 'count' }));
    const sessionid = first.attrs.sessionid ?? '';
    // Someone else's session id is as unknown as a made-up one.
    expect((await failure('b@h', cmd({ node: 'count', sessionid, action: 'next' }))).commandCondition).toBe('bad-sessionid');
    expect((await failure('a@h', cmd({ node: 'count', sessionid, action: 'prev' }))).commandCondition).toBe('bad-action');
    const canceled = await registry.handle('a@h', cmd({ node: 'count', sessionid, action: 'cancel' }));
    expect(canceled.attrs.status).toBe('canceled');
    expect((await failure('a@h', cmd({ node: 'count', sessionid, action: 'next' }))).commandCondition).toBe('bad-sessionid');
  });
});

describe('XEP-0283 notification', () => {
  it('is a subscription request carrying the old JID', () => {
    expect(movedNotification('bob@example.org', 'alice@example.net')).toBe(
      '<presence type="subscribe" to="bob@example.org"><moved xmlns="urn:xmpp:moved:1"><old-jid>alice@example.net</old-jid></moved></presence>',
    );
  });
});

describe('links with the user token in the query', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-links-'));
  const OPERATOR = 'links-operator-secret';
  let app: App;

  beforeAll(async () => {
    const config = loadConfig({
      env: {
        XPORTA_DATA_DIR: dir,
        XPORTA_PUBLIC_URL: 'https://xporta.example.org/base/',
        XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'ops', sha256: sha256Hex(OPERATOR), scopes: ['export', 'import', 'admin'], hosts: ['*'] }]),
      },
      cwd: dir,
    });
    app = buildApp({ config, storage: await openStorage(config), logger: false }) as unknown as App;
    await app.ready();
    const res = await app.inject({
      method: 'PUT',
      url: '/v1/users/alice%40localhost/import?createAccount=true',
      headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/xml' },
      payload: accountDocument({ host: 'localhost', user: 'alice', password: 'pw' }),
    });
    expect(res.statusCode).toBe(200);
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const pathOf = (url: string): string => url.replace('https://xporta.example.org/base', '');

  it('are built on publicUrl and work once, without an Authorization header', async () => {
    const link = userLink(app.ctx, 'alice@localhost', 'export', 'export', { exclude: 'archive' });
    expect(link.url).toMatch(/^https:\/\/xporta\.example\.org\/base\/v1\/users\/alice%40localhost\/export\?exclude=archive&token=xpu_/);
    expect(Date.parse(link.expiresAt) - Date.now()).toBeLessThanOrEqual(15 * 60_000);
    expect((await app.inject({ method: 'GET', url: pathOf(link.url) })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: pathOf(link.url) })).json()).toMatchObject({ status: 401, detail: 'token already used' });
  });

  it('never accept an operator token in the query, and prefer the header', async () => {
    const operatorInQuery = await app.inject({ method: 'GET', url: `/v1/users/alice%40localhost/export?token=${OPERATOR}` });
    expect(operatorInQuery.statusCode).toBe(401);
    expect(operatorInQuery.json().detail).toMatch(/Authorization: Bearer/);
    const link = userLink(app.ctx, 'alice@localhost', 'export', 'export', {});
    const header = await app.inject({ method: 'GET', url: pathOf(link.url), headers: { authorization: 'Bearer wrong' } });
    expect(header.statusCode).toBe(401);
    expect(header.json().detail).toBe('unknown token');
    // The header's failure did not spend the link.
    expect((await app.inject({ method: 'GET', url: pathOf(link.url) })).statusCode).toBe(200);
  });

  it('are not written to the request log', () => {
    const logged = REQUEST_SERIALIZER.req({ method: 'GET', url: '/v1/users/a%40b/export?a=1&token=xpu_secret.value&b=2', ip: '127.0.0.1' });
    expect(logged).toMatchObject({ method: 'GET', url: '/v1/users/a%40b/export?a=1&token=[redacted]&b=2', remoteAddress: '127.0.0.1' });
    expect(REQUEST_SERIALIZER.req({ method: 'PUT', url: '/x?token=xpu_s' }).url).toBe('/x?token=[redacted]');
  });

  it('carry only the scope they were made for', async () => {
    const link = userLink(app.ctx, 'alice@localhost', 'export', 'export', {});
    const res = await app.inject({
      method: 'PUT',
      url: `/v1/users/alice%40localhost/import?${new URL(link.url).search.slice(1)}`,
      headers: { 'content-type': 'application/xml' },
      payload: '<x/>',
    });
    expect(res.statusCode).toBe(403);
  });
});
