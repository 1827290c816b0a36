/**
 * Golden tests: documents as the XEP, Prosody and ejabberd write them, against hand-written events.
 * The XEP fixtures are the examples of XEP-0227 1.1 (xsf/xeps xep-0227.xml), byte for byte.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NS, element, type DocumentEvent, type UserStart } from '../../src/records/model.js';
import { FIXTURES, expectRejection, positionOf, readFixture, readString } from '../support/xep0227.js';

const host = (jid: string): DocumentEvent => ({ kind: 'host', jid });
const user = (name: string, extra: Partial<UserStart> = {}): DocumentEvent => ({
  kind: 'user',
  name,
  scram: [],
  extraAttributes: {},
  ...extra,
});
const userEnd: DocumentEvent = { kind: 'user-end' };
const hostEnd: DocumentEvent = { kind: 'host-end' };
const C = NS.client;

describe('XEP-0227 1.1 examples', () => {
  it('ignores placeholder text in <server-data>, <host> and <user>', async () => {
    expect(await readFixture('xep/root.xml')).toEqual([]);
    expect(await readFixture('xep/hosts.xml')).toEqual([host('capulet.com'), hostEnd, host('montague.net'), hostEnd]);
    expect(await readFixture('xep/users.xml')).toEqual([
      host('capulet.com'),
      user('juliet'),
      userEnd,
      hostEnd,
      host('montague.net'),
      user('romeo'),
      userEnd,
      hostEnd,
    ]);
  });

  it('SCRAM credentials', async () => {
    expect(await readFixture('xep/scram.xml')).toEqual([
      host('capulet.com'),
      user('juliet', {
        scram: [
          {
            mechanism: 'SCRAM-SHA-1',
            iterationCount: 100000,
            salt: 'TmFDbE5hQ2xOYUNsTmFDbE5hQ2xOYUNsTmFDbE5hQ2xOYUNsTmFDbE5hQ2wK',
            serverKey: '0pXWGK0GZJ6TR73AIUN3ITYtA1g=',
            storedKey: 'Q6qT/SbybblGCZz8e8eSfCJOQic=',
          },
        ],
      }),
      userEnd,
      hostEnd,
    ]);
  });

  it('roster', async () => {
    expect((await readFixture('xep/roster.xml'))[2]).toEqual({
      kind: 'roster',
      items: [{ jid: 'romeo@montague.net', name: 'Romeo', subscription: 'both', groups: ['Friends'] }],
    });
  });

  it('offline messages, timestamp taken from the delay', async () => {
    expect((await readFixture('xep/offline.xml'))[2]).toEqual({
      kind: 'offline',
      timestamp: '1469-07-21T00:32:29Z',
      stanza: element('message', C, { from: 'romeo@montague.net/orchard', to: 'juliet@capulet.com/balcony', type: 'chat' }, [
        '\n\t  ',
        element('body', C, {}, ['Neither, fair saint, if either thee dislike.']),
        '\n\t  ',
        element('delay', NS.delay, { from: 'capulet.com', stamp: '1469-07-21T00:32:29Z' }, ['\n\t    Offline Storage\n\t  ']),
        '\n\t',
      ]),
    });
  });

  it('private XML storage, one record per element', async () => {
    expect((await readFixture('xep/private.xml')).slice(1, 4)).toEqual([
      user('hamlet'),
      {
        kind: 'private',
        element: element('exodus', 'exodus:prefs', {}, ['\n\t  ', element('defaultnick', 'exodus:prefs', {}, ['Hamlet']), '\n\t']),
      },
      userEnd,
    ]);
  });

  it('vCard', async () => {
    expect((await readFixture('xep/vcard.xml'))[2]).toEqual({
      kind: 'vcard',
      vcard: element('vCard', NS.vcardTemp, {}, ['\n        ', element('FN', NS.vcardTemp, {}, ['Juliet Capulet']), '\n      ']),
    });
  });

  it('privacy lists', async () => {
    expect((await readFixture('xep/privacy.xml'))[2]).toEqual({
      kind: 'privacy',
      defaultList: 'public',
      lists: [
        {
          name: 'public',
          items: [
            { type: 'jid', value: 'tybalt@example.com', action: 'deny', order: 1, stanzas: [] },
            { action: 'allow', order: 2, stanzas: [] },
          ],
        },
        {
          name: 'private',
          items: [
            { type: 'subscription', value: 'both', action: 'allow', order: 10, stanzas: [] },
            { action: 'deny', order: 15, stanzas: [] },
          ],
        },
      ],
    });
  });

  it('incoming subscription requests with their payload', async () => {
    expect((await readFixture('xep/pending.xml')).slice(2, 4)).toEqual([
      {
        kind: 'pending-subscription',
        from: 'romeo@montague.net',
        payload: [element('nick', 'http://jabber.org/protocol/nick', {}, ['Romeo'])],
      },
      { kind: 'pending-subscription', from: 'mercutio@montague.net', payload: [] },
    ]);
  });

  it('PEP node configuration and items (the example uses type=form)', async () => {
    const bookmark = (id: string, name: string, autojoin: string): DocumentEvent => ({
      kind: 'pep-item',
      node: 'urn:xmpp:bookmarks:1',
      id,
      payload: element('conference', 'urn:xmpp:bookmarks:1', { name, autojoin }, [
        '\n              ',
        element('nick', 'urn:xmpp:bookmarks:1', {}, ['Romeo']),
        '\n            ',
      ]),
    });
    expect(await readFixture('xep/pep.xml')).toEqual([
      host('capulet.com'),
      user('romeo'),
      {
        kind: 'pep-node',
        node: 'urn:xmpp:bookmarks:1',
        config: [{ var: 'pubsub#access_model', values: ['whitelist'] }],
        affiliations: [],
        subscriptions: [],
      },
      {
        kind: 'pep-node',
        node: 'http://jabber.org/protocol/nick',
        config: [{ var: 'pubsub#access_model', values: ['open'] }],
        affiliations: [],
        subscriptions: [],
      },
      bookmark('theplay@conference.shakespeare.lit', "The Play's the Thing", 'true'),
      bookmark('orchard@conference.shakespeare.lit', 'The Orchard', '1'),
      {
        kind: 'pep-item',
        node: 'http://jabber.org/protocol/nick',
        id: 'current',
        payload: element('nick', 'http://jabber.org/protocol/nick', {}, ['Romy']),
      },
      userEnd,
      hostEnd,
    ]);
  });

  it('message archive, with derived from the stanza', async () => {
    const events = await readFixture('xep/archive.xml');
    expect(events.slice(2, 4)).toEqual([
      {
        kind: 'archive',
        id: '28482-98726-73623',
        timestamp: '2010-07-10T23:08:25Z',
        with: 'romeo@montague.lit',
        stanza: element('message', C, { to: 'juliet@capulet.lit/balcony', from: 'romeo@montague.lit/orchard', type: 'chat' }, [
          '\n                ',
          element('body', C, {}, ["Call me but love, and I'll be new baptized; Henceforth I never will be Romeo."]),
          '\n              ',
        ]),
      },
      {
        kind: 'archive',
        id: '5d398-28273-f7382',
        timestamp: '2010-07-10T23:09:32Z',
        // The example's user is juliet@capulet.com but its messages use capulet.lit, so Juliet's
        // own message does not look like hers and `with` becomes the sender.
        with: 'juliet@capulet.lit',
        stanza: element(
          'message',
          C,
          { to: 'romeo@montague.lit/orchard', from: 'juliet@capulet.lit/balcony', type: 'chat', id: '8a54s' },
          [
            '\n                ',
            element('body', C, {}, ["What man art thou that thus bescreen'd in night so stumblest on my counsel?"]),
            '\n              ',
          ],
        ),
      },
    ]);
  });

  it('XInclude layout: main file, host files, user files', async () => {
    const dir = path.join(FIXTURES, 'xep/xinclude');
    const events = await readFixture('xep/xinclude/main.xml', { allowXInclude: true, baseDir: dir });
    expect(events.map((e) => (e.kind === 'host' ? `host ${e.jid}` : e.kind === 'user' ? `user ${e.name}` : e.kind))).toEqual([
      'host capulet.com',
      'user juliet',
      'roster',
      'vcard',
      'offline',
      'user-end',
      'user mercutio',
      'user-end',
      'host-end',
      'host montague.net',
      'user romeo',
      'user-end',
      'host-end',
    ]);
    expect(events[4]).toMatchObject({ kind: 'offline', timestamp: '1469-07-21T00:32:29Z' });
  });
});

describe("Prosody 0.12 mod_storage_xep0227's form", () => {
  it('reads its one-line file: namespaced account keys, version=, pending presence without namespace, subscribed=', async () => {
    const text = readFileSync(path.join(FIXTURES, 'prosody/alice@localhost.xml'), 'utf8');
    expect(text.includes('\n')).toBe(false);
    const B = 'urn:xmpp:bookmarks:1';
    expect(await readFixture('prosody/alice@localhost.xml')).toEqual([
      host('localhost'),
      user('alice', {
        extraAttributes: { [`{${NS.prosodyExtended}}updated`]: '1795367896' },
        scram: [
          {
            mechanism: 'SCRAM-SHA-1',
            iterationCount: 10000,
            // Base64 of the UUID text Prosody uses as salt: taken as the salt bytes it is.
            salt: 'NmNmNGNmYTctNDgyYy00YzY0LTllOTYtN2I2ZmZiNjQ5MWVi',
            serverKey: 'dsNuSuhF7Tb+YJoO9bu2Ozk3RXA=',
            storedKey: 'OBCWYmQ7m15fsutuT8rhFQQDCMs=',
          },
        ],
      }),
      {
        kind: 'vcard',
        vcard: element('vCard', NS.vcardTemp, {}, [
          element('FN', NS.vcardTemp, {}, ['Alice Example']),
          element('NICKNAME', NS.vcardTemp, {}, ['alice']),
        ]),
      },
      { kind: 'private', element: element('roster', 'roster:delimiter', {}, ['::']) },
      {
        kind: 'private',
        element: element('prefs', 'urn:example:xporta:prefs', { version: '2' }, [
          element('theme', 'urn:example:xporta:prefs', {}, ['dark']),
        ]),
      },
      {
        kind: 'roster',
        version: '5',
        items: [
          { jid: 'bob@localhost', name: 'Bob Example', subscription: 'both', groups: ['Friends'] },
          { jid: 'carol@localhost', name: 'Carol 🎻', subscription: 'to', groups: ['Work'] },
          { jid: 'romeo@montague.example', name: 'Romeo', subscription: 'none', ask: 'subscribe', groups: ['Remote'] },
        ],
      },
      { kind: 'pending-subscription', from: 'dave@localhost', payload: [] },
      {
        kind: 'pep-node',
        node: 'urn:example:xporta:notes',
        config: [
          { var: 'pubsub#title', type: 'text-single', values: ['Notes of Alice Example'] },
          { var: 'pubsub#description', type: 'text-single', values: ['Custom node with a config form'] },
          { var: 'pubsub#max_items', type: 'text-single', values: ['10'] },
          { var: 'pubsub#access_model', type: 'list-single', values: ['presence'] },
          { var: 'pubsub#notify_retract', type: 'boolean', values: ['0'] },
          { var: 'pubsub#roster_groups_allowed', type: 'list-multi', values: [] },
        ],
        affiliations: [
          { jid: 'alice@localhost', affiliation: 'owner' },
          { jid: 'bob@localhost', affiliation: 'publisher' },
        ],
        subscriptions: [{ jid: 'bob@localhost', subscription: 'subscribed' }],
      },
      {
        kind: 'pep-node',
        node: B,
        config: [
          { var: 'pubsub#access_model', type: 'list-single', values: ['whitelist'] },
          { var: 'pubsub#max_items', type: 'text-single', values: ['max'] },
        ],
        affiliations: [{ jid: 'alice@localhost', affiliation: 'owner' }],
        subscriptions: [],
      },
      {
        kind: 'pep-item',
        node: B,
        id: 'xmpp@conference.example.org',
        payload: element('conference', B, { autojoin: 'true', name: 'XMPP Standards 💬' }, [
          element('nick', B, {}, ['alice']),
          element('extensions', B, {}, [element('state', 'urn:example:client-state', { pinned: 'true' })]),
        ]),
      },
      {
        kind: 'pep-item',
        node: B,
        id: 'lobby@conference.example.org',
        payload: element('conference', B, { autojoin: 'true', name: 'Lobby (legacy)' }, [element('nick', B, {}, ['alice'])]),
      },
      {
        kind: 'archive',
        id: 'e8c31bdc-0bbb-4caf-bb1b-2255135289bb',
        timestamp: '2026-11-22T17:18:17Z',
        with: 'bob@localhost',
        stanza: element(
          'message',
          C,
          { 'xml:lang': 'en', from: 'alice@localhost/populate', to: 'bob@localhost', type: 'chat', id: 'msg-0-42689557' },
          [
            element('body', C, {}, ['over tomorrow bookmark archive.']),
            element('origin-id', 'urn:xmpp:sid:0', { id: '42689557-9ca4-4d72-8b12-e1f695eb9a8c' }),
          ],
        ),
      },
      {
        // This message lacks xmlns='jabber:client' and so inherited urn:xmpp:forward:0.
        kind: 'archive',
        id: '891a939f-5c1e-4a43-9f2e-3f1e0d1c2b3a',
        timestamp: '2026-11-22T17:18:18Z',
        with: 'zoë.o_brien+tag%~@localhost',
        stanza: element(
          'message',
          C,
          { 'xml:lang': 'en', from: 'zoë.o_brien+tag%~@localhost/phone', to: 'alice@localhost', type: 'chat', id: 'msg-1' },
          [element('body', C, {}, ['5 < 6 && 7 > 3'])],
        ),
      },
      userEnd,
      hostEnd,
    ]);
  });

  it('gives a namespace-less pending presence and its children jabber:client', async () => {
    const events = await readString(
      "<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='carol'><presence from='bob@localhost/populate' type='subscribe'><nick xmlns='http://jabber.org/protocol/nick'>Bob</nick><status>hi</status></presence></user></host></server-data>",
    );
    expect(events[2]).toEqual({
      kind: 'pending-subscription',
      from: 'bob@localhost',
      payload: [element('nick', 'http://jabber.org/protocol/nick', {}, ['Bob']), element('status', C, {}, ['hi'])],
    });
  });
});

describe("ejabberd 23.01 export_piefxis' form", () => {
  const dir = path.join(FIXTURES, 'ejabberd');
  const main = '20230101-120000.xml';

  it('reads the main file with its XIncluded host files', async () => {
    expect(await readFixture(`ejabberd/${main}`, { allowXInclude: true, baseDir: dir })).toEqual([
      host('localhost'),
      user('alice', {
        scram: [
          {
            mechanism: 'SCRAM-SHA-1',
            iterationCount: 4096,
            // Unwrapped from ejabberd's base64-of-base64.
            salt: 'G4vNq1b2c3d4e5f6g7h8iA==',
            storedKey: 'PT7e0oF6By1vWaGgPAVAlnxBjzY=',
            serverKey: 'zc8P5SaeRyPqsbsh0HLXWdKNrEI=',
          },
        ],
      }),
      {
        kind: 'offline',
        timestamp: '2023-01-01T12:00:00.123456Z',
        stanza: element('message', C, { 'xml:lang': 'en', to: 'alice@localhost', from: 'bob@localhost/work', type: 'chat', id: 'off-1' }, [
          element('archived', 'urn:xmpp:mam:tmp', { by: 'alice@localhost', id: '1672574400123456' }),
          element('stanza-id', 'urn:xmpp:sid:0', { by: 'alice@localhost', id: '1672574400123456' }),
          element('delay', NS.delay, { from: 'localhost', stamp: '2023-01-01T12:00:00.123456Z' }, ['Offline Storage']),
          element('body', C, {}, ['Are you there?']),
        ]),
      },
      {
        kind: 'offline',
        // Normalised to UTC; the stanza keeps its own form.
        timestamp: '2023-01-01T12:30:00Z',
        stanza: element('message', C, { to: 'alice@localhost', from: 'carol@localhost/phone', type: 'normal' }, [
          element('delay', NS.delay, { from: 'localhost', stamp: '2023-01-01T13:30:00+01:00' }, ['Offline Storage']),
          element('subject', C, {}, ['Lunch']),
          element('body', C, {}, ['Noon?']),
        ]),
      },
      {
        kind: 'vcard',
        vcard: element('vCard', NS.vcardTemp, {}, [
          element('FN', NS.vcardTemp, {}, ['Alice']),
          element('PHOTO', NS.vcardTemp, {}, [
            element('TYPE', NS.vcardTemp, {}, ['image/png']),
            element('BINVAL', NS.vcardTemp, {}, ['iVBORw0KGgo=']),
          ]),
        ]),
      },
      {
        kind: 'privacy',
        defaultList: 'Blocked contacts',
        lists: [
          {
            name: 'Blocked contacts',
            items: [
              { type: 'jid', value: 'spammer@spam.example', action: 'deny', order: 0, stanzas: [] },
              { type: 'jid', value: 'troll@example.net', action: 'deny', order: 0, stanzas: [] },
            ],
          },
          {
            name: 'work',
            items: [
              { type: 'group', value: 'Work', action: 'allow', order: 10, stanzas: ['message', 'presence-in'] },
              { action: 'deny', order: 20, stanzas: [] },
            ],
          },
        ],
      },
      {
        kind: 'roster',
        items: [
          { jid: 'bob@localhost', name: 'Bob', subscription: 'both', groups: ['Friends'] },
          { jid: 'romeo@montague.example', subscription: 'none', ask: 'subscribe', groups: [] },
        ],
      },
      { kind: 'pending-subscription', from: 'carol@localhost', payload: [element('status', C, {}, ['Please add me'])] },
      {
        kind: 'private',
        element: element('storage', 'storage:bookmarks', {}, [
          element('conference', 'storage:bookmarks', { jid: 'lobby@conference.localhost', autojoin: 'true', name: 'Lobby' }, [
            element('nick', 'storage:bookmarks', {}, ['alice']),
          ]),
        ]),
      },
      userEnd,
      user('bob', { password: 'pläin secret' }),
      userEnd,
      hostEnd,
      host('example.test'),
      user('carol', { password: 'carol-pass' }),
      { kind: 'roster', items: [] },
      userEnd,
      hostEnd,
    ]);
  });

  it('refuses the XIncludes unless allowed, pointing at the include', async () => {
    const text = readFileSync(path.join(dir, main), 'utf8');
    const at = positionOf(text, '<xi:include');
    await expectRejection(text, 'xinclude', at.line, at.column);
    await expectRejection(text, 'xinclude', at.line, at.column, { allowXInclude: true });
  });

  it('reads the pre-1.0 namespace', async () => {
    expect(await readFixture('ejabberd/legacy-ns.xml')).toEqual([
      host('localhost'),
      user('dave', { password: 's3cret' }),
      {
        kind: 'offline',
        stanza: element('message', C, { to: 'dave@localhost', from: 'alice@localhost/home', type: 'chat' }, [element('body', C, {}, ['hi'])]),
      },
      { kind: 'roster', items: [{ jid: 'alice@localhost', subscription: 'from', groups: [] }] },
      userEnd,
      hostEnd,
    ]);
  });
});
