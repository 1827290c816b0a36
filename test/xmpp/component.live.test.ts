/**
 * The component against a real Prosody 0.12 with mod_privilege (XEP-0356) granting it roster
 * and PEP access, real clients (the rig's @xmpp/client build) and real HTTP (undici) on the
 * links the commands hand out. Three VirtualHosts: xporta serves localhost and example.test;
 * stranger.test is on the same server but not served by xporta.
 */
import { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { refOf } from '../../src/transfer/account-transfer.js';
import type { DocumentEvent } from '../../src/records/model.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { storedRoster } from '../../src/core/move.js';
import { accountDocument } from '../support/documents.js';
import { createUser, describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import {
  approveSubscription,
  getPepItems,
  getRoster,
  loginAs,
  subscribe,
  xml,
  XmppStanzaError,
  type XmlElement,
  type XmppClient,
} from '../support/xmpp-client.js';
import { command, eventually, NS_COMMANDS, NS_MOVED, OPERATOR, startXporta, urlIn, type Xporta } from '../support/xmpp-component.js';

const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
const NS_ROSTER = 'jabber:iq:roster';

async function events(body: string): Promise<DocumentEvent[]> {
  const out: DocumentEvent[] = [];
  for await (const e of readDocument(Readable.from([Buffer.from(body)]))) out.push(e);
  return out;
}

function isRosterPush(jid: string) {
  return (s: XmlElement): boolean =>
    s.name === 'iq' && s.attrs.type === 'set' && (s.getChild('query', NS_ROSTER)?.getChildren('item') ?? []).some((i) => i.attrs.jid === jid);
}

describeWithProsody('XMPP component with XEP-0356 privileges', () => {
  let prosody: ProsodyHandle;
  let xporta: Xporta;
  let componentJid: string;
  const clients: XmppClient[] = [];
  const login = async (user: string, host: string, presence = false): Promise<XmppClient> => {
    const client = await loginAs(prosody, user, `${user}-pw`, { host, presence });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    prosody = await startProsody({ hosts: ['localhost', 'example.test', 'stranger.test'], privilege: true });
    componentJid = prosody.component.jid;
    for (const [user, host] of [
      ['alice', 'localhost'],
      ['bob', 'localhost'],
      ['carol', 'example.test'],
      ['alicia', 'example.test'],
      ['dave', 'stranger.test'],
    ] as const) {
      await createUser(prosody, user, host, `${user}-pw`);
    }
    xporta = await startXporta(prosody, { hosts: ['localhost', 'example.test'], backoff: { initialMs: 100, maxMs: 1000 } });
    // mod_privilege advertises per VirtualHost right after the handshake.
    await eventually(() => xporta.component.permissions.roster('localhost', 'set') && xporta.component.permissions.roster('example.test', 'set'), 'privileges');
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await xporta?.close();
    await prosody?.stop();
  });

  it('connects, and says so in /health and /metrics', async () => {
    const health = await xporta.app.inject({ method: 'GET', url: '/health' });
    expect(health.json()).toMatchObject({ status: 'ok', component: { enabled: true, connected: true } });
    const metrics = await xporta.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${OPERATOR}` } });
    expect(metrics.body).toMatch(/^xporta_component_connected 1$/m);
    // The IQ namespaces of the malformed (nested) advertisement are all found.
    expect(xporta.component.permissions.iq('localhost', 'http://jabber.org/protocol/pubsub', 'set')).toBe(true);
    expect(xporta.component.permissions.iq('localhost', 'urn:xmpp:blocking', 'get')).toBe(true);
  });

  it('lists its commands to users of the hosts it serves, and refuses anyone else', async () => {
    const alice = await login('alice', 'localhost');
    const items = await alice.iq(xml('iq', { type: 'get', to: componentJid }, xml('query', { xmlns: NS_DISCO_ITEMS, node: NS_COMMANDS })));
    expect(items.getChild('query', NS_DISCO_ITEMS)?.getChildren('item').map((i) => i.attrs.node)).toEqual(['export', 'import', 'pull', 'move']);

    const dave = await login('dave', 'stranger.test');
    const disco = await dave.iq(xml('iq', { type: 'get', to: componentJid }, xml('query', { xmlns: NS_DISCO_ITEMS, node: NS_COMMANDS }))).catch((e: unknown) => e);
    expect(disco).toBeInstanceOf(XmppStanzaError);
    expect((disco as XmppStanzaError).condition).toBe('forbidden');
    const run = await command(dave, componentJid, 'export').catch((e: unknown) => e);
    expect((run as XmppStanzaError).condition).toBe('forbidden');
  });

  describe('Export my account', () => {
    it('hands out a one-time link to the account’s own XEP-0227 document', async () => {
      const alice = await login('alice', 'localhost');
      const form = await command(alice, componentJid, 'export');
      expect(form).toMatchObject({ status: 'executing', formType: 'form' });
      expect(form.fields.get('include-archive')).toEqual(['1']);
      const done = await command(alice, componentJid, 'export', { action: 'complete', sessionid: form.sessionid, form: { 'include-archive': '1' } });
      expect(done.status).toBe('completed');
      const url = done.fields.get('url')?.[0] ?? '';
      expect(url.startsWith(`${xporta.baseUrl}/v1/users/alice%40localhost/export?token=xpu_`)).toBe(true);
      expect(done.fields.get('kinds')).toContain('archive');
      expect(urlIn(done.notes[0]?.text ?? '')).toBe(url);

      const first = await request(url);
      expect(first.statusCode).toBe(200);
      const body = await first.body.text();
      const doc = await events(body);
      expect(doc[0]).toEqual({ kind: 'host', jid: 'localhost' });
      expect(doc[1]).toMatchObject({ kind: 'user', name: 'alice' });
      expect(doc.filter((e) => e.kind === 'user')).toHaveLength(1);

      const again = await request(url);
      expect(again.statusCode).toBe(401);
      expect(await again.body.json()).toMatchObject({ detail: 'token already used' });
    });

    it('refuses the link for another account, and can leave out the archive', async () => {
      const alice = await login('alice', 'localhost');
      const done = await command(alice, componentJid, 'export', { form: { 'include-archive': '0' } });
      const url = new URL(done.fields.get('url')?.[0] ?? '');
      expect(url.searchParams.get('exclude')).toBe('archive');
      expect(done.fields.get('kinds')).not.toContain('archive');
      url.pathname = '/v1/users/bob%40localhost/export';
      const other = await request(url);
      expect(other.statusCode).toBe(403);
      await other.body.dump();
    });
  });

  describe('Import into my account', () => {
    it('checks the file first, then imports it; the online client gets roster pushes', async () => {
      const online = await login('alice', 'localhost', true);
      const alice = await login('alice', 'localhost');
      const doc = accountDocument({ host: 'localhost', user: 'alice', password: 'not-used' });

      const options = await command(alice, componentJid, 'import');
      expect(options.fields.get('mode')).toEqual(['merge']);
      const check = await command(alice, componentJid, 'import', { action: 'next', sessionid: options.sessionid, form: { source: 'file', mode: 'merge', password: '0' } });
      expect(check.status).toBe('executing');
      const checkUrl = check.fields.get('check-url')?.[0] ?? '';
      expect(new URL(checkUrl).searchParams.get('dryRun')).toBe('true');

      // Next before any upload: still executing, with a fresh check link.
      const early = await command(alice, componentJid, 'import', { action: 'next', sessionid: options.sessionid });
      expect(early.status).toBe('executing');
      expect(early.notes[0]?.type).toBe('warn');
      const freshCheckUrl = early.fields.get('check-url')?.[0] ?? '';
      expect(freshCheckUrl).not.toBe(checkUrl);

      const dry = await request(freshCheckUrl, { method: 'PUT', headers: { 'content-type': 'application/xml' }, body: doc });
      expect(dry.statusCode).toBe(200);
      expect(await dry.body.json()).toMatchObject({ dryRun: true, counts: { roster: 2, vcard: 1 } });
      expect(await getRoster(online)).toEqual([]);

      const summary = await command(alice, componentJid, 'import', { action: 'next', sessionid: options.sessionid });
      expect(summary.status).toBe('completed');
      expect(summary.fields.get('counts')).toContain('roster: 2');
      const importUrl = summary.fields.get('url')?.[0] ?? '';
      expect(new URL(importUrl).searchParams.get('dryRun')).toBeNull();
      expect(new URL(importUrl).searchParams.get('exclude')).toBe('credentials');

      const real = await request(importUrl, { method: 'PUT', headers: { 'content-type': 'application/xml' }, body: doc });
      expect(real.statusCode).toBe(200);
      expect(await real.body.json()).toMatchObject({ dryRun: false, mode: 'merge' });

      // Pushed by the server itself after the component's privileged roster sets.
      for (const jid of ['bob@example.net', 'carol@example.org', 'romeo@montague.example']) await online.waitFor(isRosterPush(jid), 10_000);
      expect((await getRoster(online)).map((i) => [i.jid, i.subscription])).toEqual(
        expect.arrayContaining([
          ['bob@example.net', 'both'],
          ['carol@example.org', 'to'],
        ]),
      );
      // The rest of the data needs a reconnect: that is what the message says.
      const notice = await online.waitFor((s) => s.name === 'message' && s.attrs.from === componentJid, 10_000);
      expect(notice.attrs.type).toBe('headline');
      expect(notice.getChildText('body')).toMatch(/contact list has been updated/);
      await xporta.component.idle();
    });
  });

  describe('Move my account to another address (XEP-0283)', () => {
    // Subscribed either way on alice@localhost: two local contacts, two from the import above.
    const CONTACTS = ['bob@example.net', 'bob@localhost', 'carol@example.org', 'carol@example.test'];
    let moveResult: Awaited<ReturnType<typeof command>>;

    beforeAll(async () => {
      // alice@localhost and her contacts bob@localhost and carol@example.test subscribe both ways.
      const alice = await login('alice', 'localhost', true);
      for (const [user, host] of [
        ['bob', 'localhost'],
        ['carol', 'example.test'],
      ] as const) {
        const contact = await login(user, host, true);
        await subscribe(alice, contact.bareJid);
        await approveSubscription(contact, alice.bareJid);
        await subscribe(contact, alice.bareJid);
        await approveSubscription(alice, contact.bareJid);
        await contact.close();
      }
      await alice.close();
      const roster = await xporta.app.inject({ method: 'GET', url: '/v1/users/alice%40localhost/export?include=roster', headers: { authorization: `Bearer ${OPERATOR}` } });
      expect(roster.body).toContain("jid='bob@localhost' subscription='both'");
    });

    it('copies the data to the new account and publishes the statement on the old one', async () => {
      const newAlice = await login('alicia', 'example.test');
      const importCmd = await command(newAlice, componentJid, 'import', { form: { source: 'account', mode: 'merge', password: '0' } });
      expect(importCmd.status).toBe('completed');
      const importUrl = importCmd.fields.get('url')?.[0] ?? '';

      const oldAlice = await login('alice', 'localhost');
      const form = await command(oldAlice, componentJid, 'move');
      expect(form.fields.has('new-jid')).toBe(true);
      moveResult = await command(oldAlice, componentJid, 'move', {
        action: 'complete',
        sessionid: form.sessionid,
        form: { 'new-jid': 'alicia@example.test', 'import-url': importUrl },
      });
      expect(moveResult.status).toBe('completed');
      expect(moveResult.notes.every((n) => n.type === 'info')).toBe(true);
      expect(moveResult.fields.get('statement')).toEqual(['published']);
      expect(moveResult.notes.map((n) => n.text).join('\n')).toMatch(/Your data was copied there: contacts: 1, .*PEP items .*archived messages: 3/);
      // Prosody's mod_vcard_legacy moved the imported vCard into PEP (vCard4) at alice's login.
      const copied = await xporta.app.inject({ method: 'GET', url: '/v1/users/alicia%40example.test/export?include=pep,archive', headers: { authorization: `Bearer ${OPERATOR}` } });
      expect(copied.body).toContain('Alice Example');
      // References to the old JID inside the data now name the new one.
      expect(copied.body).toContain("from='alicia@example.test/phone'");
      // The contacts of the old account, including those the earlier import brought in.
      expect(moveResult.fields.get('contacts')?.sort()).toEqual(CONTACTS);
    });

    it('lets a contact fetch the statement with a normal PEP query', async () => {
      const bob = await login('bob', 'localhost');
      const items = await getPepItems(bob, 'alice@localhost', NS_MOVED);
      expect(items).toHaveLength(1);
      expect(items[0]?.id).toBe('current');
      expect(items[0]?.payload?.getChildText('new-jid', NS_MOVED)).toBe('alicia@example.test');
      // Presence access model: someone without a subscription may not read it.
      const dave = await login('dave', 'stranger.test');
      await expect(getPepItems(dave, 'alice@localhost', NS_MOVED)).rejects.toThrow();
    });

    it('leaves the new account holding the roster, without the old subscription states', async () => {
      // Its client was online during the copy: the roster reaches the server's live copy by
      // privileged roster sets, which run after the import has answered.
      await xporta.component.idle();
      // Signing in with its own password: the old account's credentials were not copied.
      const newAlice = await login('alicia', 'example.test');
      const roster = await getRoster(newAlice);
      expect(roster.map((i) => [i.jid, i.subscription])).toEqual(
        expect.arrayContaining([
          ['bob@localhost', 'none'],
          ['carol@example.test', 'none'],
          ['bob@example.net', 'none'],
        ]),
      );
      expect(await xporta.app.ctx.storage.userExists(refOf('alice@localhost'))).toBe(true);
    });

    it('reports the subscription requests as steps for the new account’s client, and their progress', async () => {
      const before = await xporta.app.inject({ method: 'GET', url: '/v1/users/alice%40localhost/moved', headers: { authorization: `Bearer ${OPERATOR}` } });
      expect(before.statusCode).toBe(200);
      const status = before.json<{ newJid: string; contacts: { jid: string; state: string }[]; steps: { from: string; to: string; stanza: string }[] }>();
      expect(status.newJid).toBe('alicia@example.test');
      expect(status.contacts.sort((a, b) => a.jid.localeCompare(b.jid))).toEqual(CONTACTS.map((jid) => ({ jid, state: 'to-notify' })));
      expect(status.steps.map((s) => s.to).sort()).toEqual(CONTACTS);
      expect(status.steps[0]?.stanza).toContain('<old-jid>alice@localhost</old-jid>');

      // The new account's client does the steps: a subscription request with <moved/> each.
      const bob = await login('bob', 'localhost', true);
      const newAlice = await login('alicia', 'example.test', true);
      for (const step of status.steps) {
        expect(step.from).toBe(newAlice.bareJid);
        await newAlice.send(xml('presence', { type: 'subscribe', to: step.to }, xml('moved', { xmlns: NS_MOVED }, xml('old-jid', {}, 'alice@localhost'))));
      }
      await newAlice.sync();
      const request = await bob.waitFor((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && s.attrs.from === 'alicia@example.test');
      expect(request.getChild('moved', NS_MOVED)?.getChildText('old-jid')).toBe('alice@localhost');

      // carol was offline: she holds the request, <moved/> included, and gets it on login.
      const carol = await login('carol', 'example.test', true);
      const held = await carol.waitFor((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && s.attrs.from === 'alicia@example.test');
      expect(held.getChild('moved', NS_MOVED)?.getChildText('old-jid')).toBe('alice@localhost');

      await approveSubscription(bob, 'alicia@example.test');
      await eventually(async () => {
        const res = await xporta.app.inject({ method: 'GET', url: '/v1/users/alice%40localhost/moved', headers: { authorization: `Bearer ${OPERATOR}` } });
        const contacts = res.json<{ contacts: { jid: string; state: string }[] }>().contacts;
        return contacts.find((c) => c.jid === 'bob@localhost')?.state === 'subscribed' && contacts.find((c) => c.jid === 'carol@example.test')?.state === 'requested';
      }, 'bob subscribed and carol requested');
    });
  });

  describe('when Prosody cannot commit because a reader holds the database', () => {
    it('sends the roster set again, which commits and frees the readers Prosody kept out', async () => {
      await createUser(prosody, 'erin', 'localhost', 'erin-pw');
      await xporta.component.idle();
      // A reader mid-read (its SHARED lock) when Prosody commits: Prosody has no busy handler, so
      // its COMMIT fails, and it keeps that transaction open with the lock that keeps readers out.
      const reader = new Database(prosody.sql?.database ?? '', { timeout: 0 });
      reader.exec('BEGIN');
      reader.prepare('SELECT count(*) FROM "prosody"').get();
      // The reader is done as soon as the first answer arrives, before any retry goes out.
      const answers: unknown[] = [];
      const connection = xporta.component.connection;
      const request = connection.request.bind(connection);
      const spy = vi.spyOn(connection, 'request').mockImplementation(async (iq, timeoutMs) => {
        try {
          return await request(iq, timeoutMs);
        } catch (err) {
          answers.push(err);
          throw err;
        } finally {
          if (reader.open) {
            reader.exec('COMMIT');
            reader.close();
          }
        }
      });
      try {
        await xporta.component.privileged.setRosterItem('erin@localhost', { jid: 'frank@example.net', subscription: 'none', groups: ['Moved'] });
      } finally {
        spy.mockRestore();
      }
      expect(answers).toEqual([expect.objectContaining({ condition: 'internal-server-error', errorType: 'wait', text: 'Unable to save roster' })]);
      const started = Date.now();
      const roster = await storedRoster(xporta.app.ctx, 'erin@localhost');
      expect(Date.now() - started).toBeLessThan(3000);
      expect(roster.map((i) => [i.jid, i.groups])).toEqual([['frank@example.net', ['Moved']]]);
    });
  });

  describe('when Prosody dies', () => {
    it('keeps the HTTP API up, reconnects by itself, and the commands work again', async () => {
      const componentPort = prosody.componentPort;
      const pid = prosody.pid;
      process.kill(pid as number, 'SIGKILL');
      await eventually(() => !xporta.component.connected(), 'the component to notice');
      const health = await request(`${xporta.baseUrl}/health`);
      expect(health.statusCode).toBe(200);
      expect(await health.body.json()).toMatchObject({ status: 'degraded', component: { enabled: true, connected: false } });
      const metrics = await xporta.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${OPERATOR}` } });
      expect(metrics.body).toMatch(/^xporta_component_connected 0$/m);
      const exportWhileDown = await request(`${xporta.baseUrl}/v1/users/bob%40localhost/export`, { headers: { authorization: `Bearer ${OPERATOR}` } });
      expect(exportWhileDown.statusCode).toBe(200);
      await exportWhileDown.body.dump();

      await eventually(() => !prosody.running, 'the killed process to be reaped');
      await prosody.restart();
      expect(prosody.componentPort).toBe(componentPort);
      await xporta.component.connection.waitOnline(15_000);
      expect(xporta.component.connection.connections).toBe(2);
      await eventually(() => xporta.component.permissions.roster('localhost', 'set'), 'privileges again');

      const alice = await login('alice', 'localhost');
      const done = await command(alice, componentJid, 'export', { form: { 'include-archive': '0' } });
      expect(done.status).toBe('completed');
      const res = await request(done.fields.get('url')?.[0] ?? '');
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    });
  });
});

