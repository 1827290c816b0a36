import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { NS, element, type DocumentEvent } from '../../src/records/model.js';
import { normaliseTimestamp } from '../../src/records/timestamp.js';
import { readDocument, validateJid } from '../../src/xep0227/reader.js';
import { collect, readString, writeString } from '../support/xep0227.js';

const C = NS.client;
const inUser = (body: string, name = 'juliet', host = 'capulet.example'): string =>
  `<server-data xmlns='urn:xmpp:pie:0'><host jid='${host}'><user name='${name}'>${body}</user></host></server-data>`;
const records = async (body: string): Promise<DocumentEvent[]> => (await readString(inUser(body))).slice(2, -2);

describe('validateJid (src/jid.ts rules)', () => {
  it('case-folds localpart and domain (nodeprep) and keeps the resource', () => {
    expect(validateJid('Juliet@Capulet.Example/Balcony')).toBe('juliet@capulet.example/Balcony');
    expect(validateJid('capulet.example.')).toBe('capulet.example');
    expect(validateJid('zoë.o_brien+tag%~@localhost')).toBe('zoë.o_brien+tag%~@localhost');
  });

  it.each(['', '@a', 'a@', 'a b@c', 'a@b c', 'a"b@c', "a'b@c", 'a&b@c', 'a:b@c', 'a<b@c', 'a>b@c', 'a@b@c', 'a@b/', 'a\u0000@b', 'a@b/\u0007'])(
    'refuses %j',
    (jid) => {
      expect(() => validateJid(jid)).toThrow();
    },
  );
});

describe('normaliseTimestamp', () => {
  it('keeps UTC stamps as they are and converts offsets, keeping the fraction', () => {
    expect(normaliseTimestamp('2010-07-10T23:08:25Z')).toBe('2010-07-10T23:08:25Z');
    expect(normaliseTimestamp('2010-07-10T23:08:25.123456Z')).toBe('2010-07-10T23:08:25.123456Z');
    expect(normaliseTimestamp('2010-07-11T01:08:25.5+02:00')).toBe('2010-07-10T23:08:25.5Z');
    expect(normaliseTimestamp('2010-07-10T20:38:25-02:30')).toBe('2010-07-10T23:08:25Z');
  });

  it('converts offsets in years before 100 without reading them as 19xx', () => {
    expect(normaliseTimestamp('0050-01-01T01:00:00+01:00')).toBe('0050-01-01T00:00:00Z');
    expect(normaliseTimestamp('0001-01-01T00:30:00+00:30')).toBe('0001-01-01T00:00:00Z');
  });

  it.each([
    '2010-07-10',
    '2010-07-10T23:08:25',
    '2010-07-10 23:08:25Z',
    '2010-13-10T23:08:25Z',
    '20100710T23:08:25Z',
    '2010-07-10t23:08:25z',
    '0000-01-01T00:00:00Z',
    '0000-06-01T00:00:00+02:00',
    '0001-01-01T00:00:00+00:01',
    '9999-12-31T23:59:59-00:01',
    '10000-01-01T00:00:00Z',
  ])(
    'refuses %j',
    (stamp) => {
      expect(normaliseTimestamp(stamp)).toBeUndefined();
    },
  );
});

describe('reader dialects and details', () => {
  it('derives archive `with` from the stanza when the xporta attribute is absent', async () => {
    const result = (id: string, attrs: string, extra = ''): string =>
      `<result xmlns='urn:xmpp:mam:2' id='${id}'${extra}><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z'/><message xmlns='jabber:client' ${attrs}/></forwarded></result>`;
    const events = await readString(
      `<server-data xmlns='urn:xmpp:pie:0' xmlns:xp='urn:xporta:pie-ext:0'><host jid='Capulet.Example'><user name='juliet'><archive xmlns='urn:xmpp:pie:0#mam'>` +
        result('out', "from='juliet@CAPULET.example/balcony' to='Romeo@Montague.Example/orchard'") +
        result('in', "from='Romeo@Montague.Example/orchard' to='juliet@capulet.example'") +
        result('bare', "to='nurse@capulet.example'") +
        result('neither', "type='chat'") +
        result('told', "from='juliet@capulet.example' to='romeo@montague.example'", " xp:with='friar@verona.example'") +
        '</archive></user></host></server-data>',
    );
    expect(events.filter((e) => e.kind === 'archive').map((e) => (e.kind === 'archive' ? [e.id, e.with] : []))).toEqual([
      ['out', 'Romeo@montague.example'],
      ['in', 'Romeo@montague.example'],
      ['bare', 'nurse@capulet.example'],
      ['neither', undefined],
      ['told', 'friar@verona.example'],
    ]);
  });

  it('gives archived and offline messages without a namespace jabber:client, children included', async () => {
    const events = await records(
      "<archive xmlns='urn:xmpp:pie:0#mam'><result xmlns='urn:xmpp:mam:2' id='1'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z'/><message to='romeo@montague.example'><body>hi</body><x xmlns='urn:x'/></message></forwarded></result></archive>" +
        "<offline-messages><message from='romeo@montague.example'><body>yo</body></message></offline-messages>",
    );
    expect(events).toEqual([
      {
        kind: 'archive',
        id: '1',
        timestamp: '2024-01-01T00:00:00Z',
        with: 'romeo@montague.example',
        stanza: element('message', C, { to: 'romeo@montague.example' }, [element('body', C, {}, ['hi']), element('x', 'urn:x')]),
      },
      { kind: 'offline', stanza: element('message', C, { from: 'romeo@montague.example' }, [element('body', C, {}, ['yo'])]) },
    ]);
  });

  it('unwraps double-base64 SCRAM (ejabberd) but leaves single base64 alone, for both mechanisms', async () => {
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    const sha256 = {
      salt: 'c2FsdHNhbHRzYWx0c2FsdA==',
      storedKey: 'Ce3wZiZ+yIBCjltccfRiqM0+XDsLE3qPdkEeZKe3hus=',
      serverKey: 'k3q4nlLsA09ST5FLo9zNmfyXR+Ci1J4KmBK5JRVSxeI=',
    };
    const scram = (salt: string, server: string, stored: string): string =>
      `<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-256'><iter-count>4096</iter-count><salt>${salt}</salt><server-key>${server}</server-key><stored-key>${stored}</stored-key></scram-credentials>`;
    const expected = { mechanism: 'SCRAM-SHA-256', iterationCount: 4096, ...sha256 };
    for (const body of [
      scram(sha256.salt, sha256.serverKey, sha256.storedKey),
      scram(b64(sha256.salt), b64(sha256.serverKey), b64(sha256.storedKey)),
      // Line-wrapped and unpadded base64 is read too, and written back canonically.
      scram('c2FsdHNh\nbHRzYWx0c2FsdA', sha256.serverKey, sha256.storedKey),
    ]) {
      const events = await readString(inUser(body));
      expect(events[1]).toMatchObject({ kind: 'user', scram: [expected] });
    }
  });

  it('keeps SCRAM sets of mechanisms the model lacks as opaque records, after the user', async () => {
    const other =
      "<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-512'><iter-count>1</iter-count><salt>c2FsdA==</salt><server-key>AA==</server-key><stored-key>AA==</stored-key></scram-credentials>";
    const events = await readString(inUser(`${other}<vCard xmlns='vcard-temp'/>`));
    expect(events.map((e) => e.kind)).toEqual(['host', 'user', 'opaque', 'vcard', 'user-end', 'host-end']);
    expect(events[2]).toMatchObject({ kind: 'opaque', element: { name: 'scram-credentials', attrs: { mechanism: 'SCRAM-SHA-512' } } });
  });

  it('keeps unknown children of <user> and of its containers as opaque records that write back the same', async () => {
    const body =
      "<last xmlns='jabber:iq:last' seconds='10'>gone</last>" +
      "<archive xmlns='urn:xmpp:pie:0#mam'><prefs xmlns='urn:xmpp:mam:2' default='roster'/></archive>" +
      "<offline-messages><presence xmlns='jabber:client' from='a@b'/></offline-messages>" +
      "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'><retract xmlns='http://jabber.org/protocol/pubsub' id='1'/></items><publish-options/></pubsub>" +
      "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><default><x xmlns='jabber:x:data'/></default><configure node='n'/></pubsub>" +
      "<presence xmlns='jabber:client' type='subscribed' from='a@b'/>";
    const first = await records(body);
    expect(first.map((e) => e.kind)).toEqual(['opaque', 'opaque', 'opaque', 'opaque', 'opaque', 'pep-node', 'opaque', 'opaque']);
    expect(first[1]).toEqual({
      kind: 'opaque',
      element: element('archive', NS.mamArchive, {}, [element('prefs', NS.mam, { default: 'roster' })]),
    });
    expect(first[3]).toEqual({
      kind: 'opaque',
      element: element('pubsub', NS.pubsub, {}, [
        element('items', NS.pubsub, { node: 'n' }, [element('retract', NS.pubsub, { id: '1' })]),
      ]),
    });
    const events: DocumentEvent[] = [
      { kind: 'host', jid: 'capulet.example' },
      { kind: 'user', name: 'juliet', scram: [], extraAttributes: {} },
      ...first,
      { kind: 'user-end' },
      { kind: 'host-end' },
    ];
    expect(await readString(await writeString(events))).toEqual(events);
  });

  it('skips unknown children of <server-data> and <host>, comments and processing instructions', async () => {
    const events = await readString(
      "<?xml version='1.0'?><!-- exported --><?app x?><server-data xmlns='urn:xmpp:pie:0'><meta xmlns='urn:example:m'><host jid='not.a.host'/></meta>" +
        "<host jid='a.example'><!-- c --><muc xmlns='urn:example:muc'><user name='room'/></muc><user name='u'><?pi?><vCard xmlns='vcard-temp'><FN><![CDATA[<b>&amp;</b>]]> &amp; more</FN><!-- dropped --></vCard></user></host></server-data>",
    );
    expect(events).toEqual([
      { kind: 'host', jid: 'a.example' },
      { kind: 'user', name: 'u', scram: [], extraAttributes: {} },
      { kind: 'vcard', vcard: element('vCard', NS.vcardTemp, {}, [element('FN', NS.vcardTemp, {}, ['<b>&amp;</b> & more'])]) },
      { kind: 'user-end' },
      { kind: 'host-end' },
    ]);
  });

  it('reads Readable streams, strings with a BOM and byte chunks alike', async () => {
    const doc = inUser("<vCard xmlns='vcard-temp'><FN>Jülïet 😀</FN></vCard>");
    const expected = await readString(doc);
    expect(await collect(readDocument(Readable.from([Buffer.from(`\uFEFF${doc}`)])))).toEqual(expected);
    expect(await collect(readDocument([`\uFEFF${doc}`]))).toEqual(expected);
    const bytes = Buffer.from(doc);
    expect(await collect(readDocument([...bytes].map((b) => Uint8Array.of(b))))).toEqual(expected);
    const stream = Readable.from([doc.slice(0, 50), doc.slice(50)]);
    stream.setEncoding('utf8');
    expect(await collect(readDocument(stream))).toEqual(expected);
  });

  it('normalises user and host names and keeps extra user attributes', async () => {
    const events = await readString(
      "<server-data xmlns='urn:xmpp:pie:0'><host jid='Capulet.EXAMPLE'><user name='Juliet' password='p' created='2020' xml:lang='it' xmlns:e='http://prosody.im/protocol/extended-xep0227' e:email='j@example.org'/></host></server-data>",
    );
    expect(events.slice(0, 2)).toEqual([
      { kind: 'host', jid: 'capulet.example' },
      {
        kind: 'user',
        name: 'juliet',
        password: 'p',
        scram: [],
        extraAttributes: { created: '2020', 'xml:lang': 'it', [`{${NS.prosodyExtended}}email`]: 'j@example.org' },
      },
    ]);
  });

  it('groups PEP configuration by node whatever the order of its parts', async () => {
    const events = await records(
      "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>" +
        "<affiliations node='b'><affiliation jid='x@y' affiliation='member'/></affiliations>" +
        "<configure node='a'/><configure node='b'><x xmlns='jabber:x:data' type='submit'><field var='pubsub#title'><value>B</value></field></x></configure>" +
        "<subscriptions node='a'><subscription jid='z@y' subscription='pending' subid='7'/></subscriptions></pubsub>",
    );
    expect(events).toEqual([
      { kind: 'pep-node', node: 'b', config: [{ var: 'pubsub#title', values: ['B'] }], affiliations: [{ jid: 'x@y', affiliation: 'member' }], subscriptions: [] },
      { kind: 'pep-node', node: 'a', config: [], affiliations: [], subscriptions: [{ jid: 'z@y', subscription: 'pending', subid: '7' }] },
    ]);
  });

  it('does not read the next chunk before the consumer has taken the events of this one', async () => {
    const doc = inUser("<vCard xmlns='vcard-temp'/>".repeat(3));
    let pulled = 0;
    async function* chunks(): AsyncGenerator<string> {
      for (const piece of [doc.slice(0, 120), doc.slice(120, 200), doc.slice(200)]) {
        pulled++;
        yield piece;
      }
    }
    const reader = readDocument(chunks());
    await reader.next();
    expect(pulled).toBe(1);
    await reader.return(undefined);
  });
});
