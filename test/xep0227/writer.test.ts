import { describe, expect, it } from 'vitest';
import { NS, element, type DocumentEvent, type UserRecord } from '../../src/records/model.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { WRITER_CHUNK_BYTES, documentStream, writeDocument } from '../../src/xep0227/writer.js';
import { XmlCharError } from '../../src/xml/xml.js';
import { collect, readString, writeString } from '../support/xep0227.js';

const C = NS.client;
const around = (...records: UserRecord[]): DocumentEvent[] => [
  { kind: 'host', jid: 'capulet.example' },
  { kind: 'user', name: 'juliet', scram: [], extraAttributes: {} },
  ...records,
  { kind: 'user-end' },
  { kind: 'host-end' },
];
const msg = (body: string): ReturnType<typeof element> => element('message', C, { to: 'romeo@montague.example' }, [element('body', C, {}, [body])]);

describe('writer output', () => {
  it('writes the spec form: credentials first, pending presence in jabber:client, ver=, subscription=, extension attributes', async () => {
    const text = await writeString([
      { kind: 'host', jid: 'capulet.example' },
      {
        kind: 'user',
        name: 'juliet',
        password: "s3cr'et",
        scram: [
          { mechanism: 'SCRAM-SHA-1', iterationCount: 4096, salt: 'c2FsdA==', serverKey: '0pXWGK0GZJ6TR73AIUN3ITYtA1g=', storedKey: 'Q6qT/SbybblGCZz8e8eSfCJOQic=' },
        ],
        extraAttributes: { [`{${NS.prosodyExtended}}email`]: 'j@example.org', 'xml:lang': 'en' },
      },
      { kind: 'roster', version: '7', items: [{ jid: 'romeo@montague.example', subscription: 'both', approved: true, groups: ['Friends', ''] }] },
      { kind: 'pending-subscription', from: 'tybalt@capulet.example', payload: [element('nick', 'http://jabber.org/protocol/nick', {}, ['Tybalt'])] },
      {
        kind: 'pep-node',
        node: 'urn:xmpp:bookmarks:1',
        config: [{ var: 'pubsub#access_model', type: 'list-single', values: ['whitelist'] }],
        affiliations: [{ jid: 'juliet@capulet.example', affiliation: 'owner' }],
        subscriptions: [{ jid: 'nurse@capulet.example', subscription: 'subscribed', subid: 's1' }],
      },
      { kind: 'pep-item', node: 'urn:xmpp:bookmarks:1', id: 'b1', payload: null, publisher: 'juliet@capulet.example', published: '2024-01-02T03:04:05Z' },
      { kind: 'archive', id: 'a1', timestamp: '2024-01-02T03:04:05.5Z', with: 'romeo@montague.example', stanza: msg('hi') },
      { kind: 'blocklist', items: ['tybalt@capulet.example'] },
      { kind: 'user-end' },
      { kind: 'host-end' },
    ]);
    expect(text).toBe(
      [
        "<?xml version='1.0' encoding='UTF-8'?>",
        "<server-data xmlns='urn:xmpp:pie:0' xmlns:xp='urn:xporta:pie-ext:0'>",
        "<host jid='capulet.example'>",
        "<user name='juliet' password='s3cr&apos;et' xmlns:ns1='http://prosody.im/protocol/extended-xep0227' ns1:email='j@example.org' xml:lang='en'>",
        "<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>4096</iter-count><salt>c2FsdA==</salt><server-key>0pXWGK0GZJ6TR73AIUN3ITYtA1g=</server-key><stored-key>Q6qT/SbybblGCZz8e8eSfCJOQic=</stored-key></scram-credentials>",
        "<query xmlns='jabber:iq:roster' ver='7'><item jid='romeo@montague.example' subscription='both' approved='true'><group>Friends</group><group/></item></query>",
        "<presence xmlns='jabber:client' type='subscribe' from='tybalt@capulet.example'><nick xmlns='http://jabber.org/protocol/nick'>Tybalt</nick></presence>",
        "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='urn:xmpp:bookmarks:1'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field><field var='pubsub#access_model' type='list-single'><value>whitelist</value></field></x></configure><affiliations node='urn:xmpp:bookmarks:1'><affiliation jid='juliet@capulet.example' affiliation='owner'/></affiliations><subscriptions node='urn:xmpp:bookmarks:1'><subscription jid='nurse@capulet.example' subscription='subscribed' subid='s1'/></subscriptions></pubsub>",
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'><item id='b1' publisher='juliet@capulet.example' xp:published='2024-01-02T03:04:05Z'/></items></pubsub>",
        "<archive xmlns='urn:xmpp:pie:0#mam'>",
        "<result xmlns='urn:xmpp:mam:2' id='a1' xp:with='romeo@montague.example'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2024-01-02T03:04:05.5Z'/><message xmlns='jabber:client' to='romeo@montague.example'><body>hi</body></message></forwarded></result>",
        '</archive>',
        "<blocklist xmlns='urn:xmpp:blocking'><item jid='tybalt@capulet.example'/></blocklist>",
        '</user>',
        '</host>',
        '</server-data>',
        '',
      ].join('\n'),
    );
  });

  it('groups consecutive records into one container and reopens it when a kind recurs', async () => {
    const priv = (n: string): UserRecord => ({ kind: 'private', element: element(n, `urn:example:${n}`) });
    const item = (node: string, id: string): UserRecord => ({ kind: 'pep-item', node, id, payload: null });
    const arch = (id: string): UserRecord => ({ kind: 'archive', id, timestamp: '2024-01-01T00:00:00Z', with: 'a@b', stanza: msg(id) });
    const off = (body: string): UserRecord => ({ kind: 'offline', stanza: msg(body) });
    const records = [
      priv('a'),
      priv('b'),
      item('n1', '1'),
      item('n1', '2'),
      item('n2', '3'),
      item('n1', '4'),
      arch('x'),
      arch('y'),
      off('o1'),
      off('o2'),
      priv('c'),
      arch('z'),
      item('n2', '5'),
    ];
    const text = await writeString(around(...records));
    const count = (s: string): number => text.split(s).length - 1;
    expect(count("<query xmlns='jabber:iq:private'>")).toBe(2);
    expect(count("<pubsub xmlns='http://jabber.org/protocol/pubsub'>")).toBe(2);
    expect(count('<items ')).toBe(4);
    expect(count("<archive xmlns='urn:xmpp:pie:0#mam'>")).toBe(2);
    expect(count('<offline-messages>')).toBe(1);
    expect(text).toContain("<items node='n1'><item id='1'/><item id='2'/></items>\n<items node='n2'><item id='3'/></items>\n<items node='n1'><item id='4'/></items></pubsub>");
    // Whatever the grouping, the reader gives the records back in order.
    expect((await readString(text)).slice(2, -2)).toEqual(records);
  });

  it('accepts events without the *-end ones and closes what is open', async () => {
    const text = await writeString([
      { kind: 'host', jid: 'a.example' },
      { kind: 'user', name: 'u1', scram: [], extraAttributes: {} },
      { kind: 'private', element: element('x', 'urn:x') },
      { kind: 'user', name: 'u2', scram: [], extraAttributes: {} },
      { kind: 'host', jid: 'b.example' },
    ]);
    expect((await readString(text)).map((e) => e.kind)).toEqual(['host', 'user', 'private', 'user-end', 'user', 'user-end', 'host-end', 'host', 'host-end']);
  });

  it('refuses records outside a user', async () => {
    await expect(writeString([{ kind: 'host', jid: 'a' }, { kind: 'vcard', vcard: element('vCard', NS.vcardTemp) }])).rejects.toThrow(/outside a user/);
    await expect(writeString([{ kind: 'user', name: 'u', scram: [], extraAttributes: {} }])).rejects.toThrow(/outside a host/);
  });

  it('refuses characters XML cannot carry, wherever they are', async () => {
    await expect(writeString(around({ kind: 'vcard', vcard: element('vCard', NS.vcardTemp, {}, ['\u0000']) }))).rejects.toBeInstanceOf(XmlCharError);
    await expect(writeString(around({ kind: 'blocklist', items: ['a\uFFFE'] }))).rejects.toBeInstanceOf(XmlCharError);
    await expect(writeString([{ kind: 'host', jid: 'a\uD800' }])).rejects.toBeInstanceOf(XmlCharError);
    await expect(writeString(around({ kind: 'archive', id: '\u0001', timestamp: 't', stanza: msg('x') }))).rejects.toBeInstanceOf(XmlCharError);
  });

  it('with onInvalidChars, replaces such characters by U+FFFD, reports each event once, and stays well-formed', async () => {
    const reports: unknown[] = [];
    const events = around(
      { kind: 'archive', id: 'a1', timestamp: '2024-01-01T00:00:00Z', stanza: msg('fine') },
      { kind: 'archive', id: 'a\u0001', timestamp: '2024-01-01T00:00:01Z', stanza: msg('bad\u0002') },
      { kind: 'archive', id: 'a3', timestamp: '2024-01-01T00:00:02Z', stanza: msg('fine') },
      { kind: 'vcard', vcard: element('vCard', NS.vcardTemp, {}, [element('FN', NS.vcardTemp, {}, ['x\uD800y'])]) },
    );
    events.splice(1, 1, { kind: 'user', name: 'u', scram: [], extraAttributes: {}, password: 'p\u0003' });
    let text = '';
    for await (const chunk of writeDocument(events, { onInvalidChars: (r) => reports.push(r) })) text += chunk.toString('utf8');
    const read = await readString(text);
    expect(read.filter((e) => e.kind === 'archive').map((e) => (e.kind === 'archive' ? e.id : ''))).toEqual(['a1', 'a\uFFFD', 'a3']);
    expect(read.find((e) => e.kind === 'user')).toMatchObject({ password: 'p\uFFFD' });
    expect(reports).toEqual([
      { kind: 'user', user: 'u', detail: undefined, codePoint: 3 },
      { kind: 'archive', user: 'u', detail: 'id a\u0001', codePoint: 1 },
      { kind: 'vcard', user: 'u', detail: undefined, codePoint: 0xd800 },
    ]);
  });

  it('with onInvalidChars, undoes what a refused event wrote even across chunk boundaries', async () => {
    // Each long event fills more than a chunk before its bad character is met, once the writer is mid-chunk.
    const long = (bad: string): UserRecord => ({ kind: 'vcard', vcard: element('vCard', NS.vcardTemp, {}, [element('FN', NS.vcardTemp, {}, [`${'é'.repeat(50_000)}${bad}`])]) });
    const fine = { kind: 'archive', id: 'a1', timestamp: '2024-01-01T00:00:00Z', stanza: msg('fine') } as const;
    const given = around(fine, long('\u0001'), fine, long('x'), long('\u0002'), fine);
    const cleaned = around(fine, long('\uFFFD'), fine, long('x'), long('\uFFFD'), fine);
    const chunks = await collect(writeDocument(given, { onInvalidChars: () => undefined }));
    for (const chunk of chunks.slice(0, -1)) expect(chunk.length).toBe(WRITER_CHUNK_BYTES);
    expect(Buffer.concat(chunks).toString('utf8')).toBe(await writeString(cleaned));
  });

  it('writes the offline storage time as a XEP-0203 delay, which the reader takes back out', async () => {
    const delayed = element('message', C, {}, [element('delay', NS.delay, { stamp: '2024-01-01T00:00:00Z' })]);
    const text = await writeString(
      around(
        { kind: 'offline', timestamp: '2024-01-01T00:00:00Z', stanza: delayed },
        { kind: 'offline', timestamp: '2024-02-02T00:00:00Z', stanza: msg('x') },
        { kind: 'offline', timestamp: '2024-03-03T00:00:00Z', stanza: delayed },
      ),
    );
    // Every importer reads the delay; the extension attribute only where the stanza's own delay says another time.
    expect(text.match(/<delay [^>]*stamp='2024-02-02T00:00:00Z'/)).not.toBeNull();
    expect(text.split('timestamp=').length - 1).toBe(1);
    expect((await readString(text)).slice(2, 5)).toEqual([
      { kind: 'offline', timestamp: '2024-01-01T00:00:00Z', stanza: delayed },
      { kind: 'offline', timestamp: '2024-02-02T00:00:00Z', stanza: msg('x') },
      { kind: 'offline', timestamp: '2024-03-03T00:00:00Z', stanza: delayed },
    ]);
  });
});

describe('writer chunking and backpressure', () => {
  /** A source of archive records that counts how many the writer has taken. */
  function source(total: number): { events: AsyncGenerator<DocumentEvent>; pulled: () => number } {
    let pulled = 0;
    async function* events(): AsyncGenerator<DocumentEvent> {
      yield { kind: 'host', jid: 'capulet.example' };
      yield { kind: 'user', name: 'juliet', scram: [], extraAttributes: {} };
      for (let i = 0; i < total; i++) {
        pulled++;
        yield { kind: 'archive', id: `m${i}`, timestamp: '2024-01-01T00:00:00Z', with: 'romeo@montague.example', stanza: msg(`message ${i} ✓ ${'x'.repeat(i % 50)}`) };
      }
      yield { kind: 'user-end' };
      yield { kind: 'host-end' };
    }
    return { events: events(), pulled: () => pulled };
  }

  it('yields 64 KiB chunks (the last one smaller) that concatenate to the document', async () => {
    const { events } = source(5000);
    const chunks = await collect(writeDocument(events));
    expect(chunks.length).toBeGreaterThan(10);
    for (const chunk of chunks.slice(0, -1)) expect(chunk.length).toBe(WRITER_CHUNK_BYTES);
    expect(chunks.at(-1)!.length).toBeLessThanOrEqual(WRITER_CHUNK_BYTES);
    const records = (await collect(readDocument(chunks))).filter((e) => e.kind === 'archive');
    expect(records).toHaveLength(5000);
  });

  it('does not run ahead of a slow consumer', async () => {
    const { events, pulled } = source(100_000);
    const writer = writeDocument(events);
    const first = await writer.next();
    expect(first.done).toBe(false);
    // One chunk holds a few hundred of these records; the writer may be one record past it.
    const perChunk = pulled();
    expect(perChunk).toBeGreaterThan(100);
    expect(perChunk).toBeLessThan(1000);
    await new Promise((r) => setTimeout(r, 20));
    expect(pulled()).toBe(perChunk);
    for (let i = 0; i < 9; i++) await writer.next();
    // Ten chunks consumed: about ten chunks' worth of records pulled, not the 100 000.
    expect(pulled()).toBeGreaterThan(perChunk * 8);
    expect(pulled()).toBeLessThan(perChunk * 12);
    await writer.return(undefined);
  });

  it('documentStream reads ahead by at most its high-water mark', async () => {
    const { events, pulled } = source(100_000);
    const stream = documentStream(events);
    await new Promise((r) => setTimeout(r, 50));
    const buffered = pulled();
    expect(buffered).toBeLessThan(3000);
    let bytes = 0;
    for await (const chunk of stream) {
      bytes += (chunk as Buffer).length;
      if (bytes > 10 * WRITER_CHUNK_BYTES) break;
    }
    expect(pulled()).toBeLessThan(20_000);
  });
});
