/**
 * The component against a Prosody that grants it nothing (no mod_privilege): after an import the
 * user is told by message to reconnect, and the moved statement goes into storage, where the
 * server finds it after a restart.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XmppComponent } from '../../src/xmpp/component.js';
import { accountDocument } from '../support/documents.js';
import { createUser, describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { approveSubscription, getPepItems, getRoster, loginAs, subscribe, type XmppClient } from '../support/xmpp-client.js';
import { eventually, NS_MOVED, OPERATOR, startXporta, type Xporta } from '../support/xmpp-component.js';

describeWithProsody('XMPP component without XEP-0356 privileges', () => {
  let prosody: ProsodyHandle;
  let xporta: Xporta;
  const clients: XmppClient[] = [];
  const login = async (user: string, presence = false): Promise<XmppClient> => {
    const client = await loginAs(prosody, user, `${user}-pw`, { presence });
    clients.push(client);
    return client;
  };
  const auth = { authorization: `Bearer ${OPERATOR}` };

  beforeAll(async () => {
    prosody = await startProsody({ hosts: ['localhost'] });
    for (const user of ['alice', 'bob']) await createUser(prosody, user, 'localhost', `${user}-pw`);
    xporta = await startXporta(prosody, { hosts: ['localhost'], backoff: { initialMs: 100, maxMs: 1000 } });
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await xporta?.close();
    await prosody?.stop();
  });

  it('has no permissions, and says so by not pushing', () => {
    expect(xporta.component.connected()).toBe(true);
    expect(xporta.component.permissions.hosts()).toEqual([]);
    expect(xporta.component.privileged.canSetRoster('localhost')).toBe(false);
  });

  it('tells an online client what an import changed and to reconnect', async () => {
    const online = await login('alice', true);
    const res = await request(`${xporta.baseUrl}/v1/users/alice%40localhost/import?mode=merge&exclude=credentials`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/xml' },
      body: accountDocument({ host: 'localhost', user: 'alice', password: 'unused' }),
    });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    const notice = await online.waitFor((s) => s.name === 'message' && s.attrs.from === prosody.component.jid, 10_000);
    expect(notice.attrs.type).toBe('headline');
    const body = notice.getChildText('body') ?? '';
    expect(body).toMatch(/An import \(merge\) into your account finished: contacts: 2, profile \(vCard\): 1/);
    expect(body).toMatch(/Disconnect all of them now and connect again/);
    // No roster push: the live session still holds what it loaded at login.
    expect(online.inbox.some((s) => s.name === 'iq' && s.getChild('query', 'jabber:iq:roster'))).toBe(false);
    expect(await getRoster(online)).toEqual([]);
  });

  it('writes the moved statement to storage, where the server serves it after a restart', async () => {
    const alice = await login('alice', true);
    const bob = await login('bob', true);
    await subscribe(bob, 'alice@localhost');
    await approveSubscription(alice, 'bob@localhost');
    await Promise.all([alice.close(), bob.close()]);

    const res = await request(`${xporta.baseUrl}/v1/users/alice%40localhost/moved`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ newJid: 'alice@elsewhere.example' }),
    });
    expect(res.statusCode).toBe(200);
    const moved = (await res.body.json()) as { statement: { via: string; note: string }; contacts: { jid: string; state: string }[] };
    expect(moved.statement).toMatchObject({ via: 'storage', note: expect.stringMatching(/restart/) });
    // The new account is elsewhere: xporta cannot see whether contacts accepted it.
    expect(moved.contacts).toContainEqual({ jid: 'bob@localhost', state: 'unknown' });

    await prosody.restart();
    await xporta.component.connection.waitOnline(15_000);
    const reader = await login('bob');
    const items = await getPepItems(reader, 'alice@localhost', NS_MOVED);
    expect(items.map((i) => [i.id, i.payload?.getChildText('new-jid', NS_MOVED)])).toEqual([['current', 'alice@elsewhere.example']]);
  });

  describe('connection', () => {
    it('keeps retrying with a wrong secret, and reports it', async () => {
      const wrong = new XmppComponent({
        config: { ...xporta.config, component: { ...xporta.config.component, secret: 'not-the-secret' } },
        log: { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined },
        backoff: { initialMs: 50, maxMs: 200 },
      });
      wrong.connection.start();
      try {
        await eventually(() => (wrong.connection.lastError ?? '').length > 0 && wrong.connection.state === 'waiting', 'a failed attempt');
        expect(wrong.connected()).toBe(false);
        expect(wrong.connection.lastError).toMatch(/not-authorized|Unexpected server response/);
        await expect(wrong.connection.waitOnline(500)).rejects.toThrow(/not online/);
      } finally {
        await wrong.stop();
      }
      expect(wrong.connection.state).toBe('stopped');
    });
  });
});
