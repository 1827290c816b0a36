/**
 * The reader's fast path for archive items (archive-item.ts) against the parser: for any input,
 * the events and the error (code, message, line, column) must be the same with and without it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { syntheticAccount } from '../../bench/synthetic.js';
import { measureText, hasOnlyXmlChars } from '../../src/xml/chars.js';
import { Xep0227Error } from '../../src/xep0227/errors.js';
import type { DocumentEvent, XmlElement } from '../../src/records/model.js';
import { readDocument, type ReaderOptions } from '../../src/xep0227/reader.js';
import { parseElement, serializeElement, storedText } from '../../src/xml/xml.js';
import { serializeXmlValue } from '../../src/storage/prosody/stanza.js';
import { collect, writeString } from '../support/xep0227.js';

type Outcome = { events: DocumentEvent[] } | { error: { code: string; message: string; line: number; column: number } };

async function outcome(chunks: readonly (string | Uint8Array)[], options: ReaderOptions): Promise<Outcome> {
  try {
    return { events: await collect(readDocument(chunks, options)) };
  } catch (err) {
    if (!(err instanceof Xep0227Error)) throw err;
    return { error: { code: err.code, message: err.message, line: err.line, column: err.column } };
  }
}

/** Both ways, compared; returns the fast path's outcome. */
async function same(chunks: readonly (string | Uint8Array)[], options: ReaderOptions = {}): Promise<Outcome> {
  const fast = await outcome(chunks, { ...options, fastArchive: true });
  const slow = await outcome(chunks, { ...options, fastArchive: false });
  expect(fast).toEqual(slow);
  return fast;
}

function splitAt(text: string, sizes: readonly number[]): string[] {
  const out: string[] = [];
  let i = 0;
  for (let k = 0; i < text.length; k++) {
    const size = sizes[k % sizes.length] ?? 1;
    out.push(text.slice(i, i + size));
    i += size;
  }
  return out;
}

const HEAD = `<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='bench'>\n<archive xmlns='urn:xmpp:pie:0#mam'>\n`;
const TAIL = `\n</archive>\n</user></host></server-data>\n`;
const item = (id: string, message: string, stamp = '2024-01-01T00:00:00Z'): string =>
  `<result xmlns='urn:xmpp:mam:2' id='${id}'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='${stamp}'/>${message}</forwarded></result>`;
const message = (body: string, attrs = `from='bench@localhost/a' to='peer@example.net' type='chat'`): string =>
  `<message xmlns='jabber:client' ${attrs}><body>${body}</body></message>`;
const archive = (...items: string[]): string => HEAD + items.join('\n') + TAIL;

const archived = (events: DocumentEvent[]): DocumentEvent[] => events.filter((e) => e.kind === 'archive');

describe('archive fast path', () => {
  it('gives the same events as the parser for the benchmark account, in any chunking', async () => {
    const doc = await writeString(syntheticAccount(400));
    const whole = await same([doc]);
    expect('events' in whole && archived(whole.events)).toHaveLength(400);
    await same(splitAt(doc, [1, 7, 64, 3, 500, 13]));
    await same(splitAt(doc, [4093, 17, 65_536]).map((s) => Buffer.from(s)));
  });

  it('keeps the message as text that storage copies, and parses it only when read', async () => {
    const events = await same([archive(item('a1', message('hi &amp; <b>bye</b>'.replace('<b>bye</b>', 'bye'))))]);
    const record = 'events' in events ? archived(events.events)[0] : undefined;
    if (record?.kind !== 'archive') throw new Error('no archive record');
    const stanza: XmlElement = record.stanza;
    expect(storedText(stanza, 'jabber:client')).toBe(`<message from='bench@localhost/a' to='peer@example.net' type='chat'><body>hi &amp; bye</body></message>`);
    expect(serializeXmlValue(stanza)).toBe(storedText(stanza, 'jabber:client'));
    expect(serializeElement(stanza, 'urn:xmpp:forward:0')).toBe(message('hi &amp; bye'));
    expect(record.with).toBe('peer@example.net');
  });

  it.each([
    ['pretty-printed items', item('a', `\n    ${message('x')}\n  `).replace('<forwarded', '\n  <forwarded').replace('</result>', '\n</result>')],
    ['CR LF line ends', item('a', message('x')).replace('><', '>\r\n<')],
    ['a lone CR', item('a', message('x')).replace('><body', '>\r<body')],
    ['a delay with text', item('a', message('x')).replace(`/><message`, `>Offline</delay><message`)],
    ['a message without its own namespace', item('a', message('x').replace(` xmlns='jabber:client'`, ''))],
    ['a message in another namespace', item('a', message('x').replace('jabber:client', 'jabber:server'))],
    ['a prefixed attribute', item('a', message('x')).replace(`id='a'`, `id='a' xmlns:x='urn:xporta:0' x:with='w@example.net'`)],
    ['a result inside the message', item('a', message(`<result xmlns='urn:xmpp:mam:2' id='in'/>x`))],
    ['a nested result element closing first', item('a', message(`<result xmlns='urn:xmpp:mam:2' id='in'>y</result>`))],
    ['a tab in an attribute', item('a', message('x', `from='bench@localhost/a\tb' to='p@example.net'`))],
    ['entities in attributes', item('a&amp;b', message('x', `from='a&apos;b@example.net' to='bench@localhost'`))],
    ['a character reference', item('a', message('&#x1F600;&#9;'))],
    ['astral characters', item('a', message('😀 𝄞 ok'))],
    ['CDATA', item('a', message('<![CDATA[<not markup>]]>'))],
    ['a comment inside', item('a', message('x<!-- c -->y'))],
    ['a comment between items', `${item('a', message('x'))}<!-- between -->`],
    ['text between items', `${item('a', message('x'))}stray text`],
    ['two messages', item('a', message('x') + message('y'))],
    ['no delay', item('a', message('x')).replace(/<delay[^>]*\/>/, '')],
    ['a result without an id', item('a', message('x')).replace(` id='a'`, '')],
    ['an invalid stamp', item('a', message('x'), 'yesterday')],
    ['a stanza-id of the owner', item('a', message(`x</body><stanza-id xmlns='urn:xmpp:sid:0' by='bench@localhost' id='s'/><body>`))],
    ['double-quoted attributes', item('a', message('x')).replace(/'/g, '"')],
    ['spaces around =', item('a', message('x')).replace(`id='a'`, `id = 'a' `)],
    ['a result element named results', item('a', message('x')).replace(/<result /, '<results ').replace('</result>', '</results>')],
    ['an unknown child of archive', `<other xmlns='urn:x'/>${item('a', message('x'))}`],
  ])('agrees with the parser on %s', async (_label, body) => {
    const doc = archive(item('first', message('one')), body, item('last', message('two')));
    await same([doc]);
    await same(splitAt(doc, [5, 11, 2]));
  });

  it.each([
    ['the usual shape', item('a', message('x')), true],
    ['pretty-printed items', item('a', `\n    ${message('x')}\n  `).replace('<forwarded', '\n  <forwarded').replace('</result>', '\n</result >'), true],
    ['CR LF between its elements', item('a', message('x')).replace('><', '>\r\n<'), true],
    ['double-quoted attributes and spaces around =', item('a', message('x')).replace(/'/g, '"').replace(`id="a"`, `id = "a" `), true],
    ['entities in attributes', item('a&amp;b', message('x', `from='a&apos;b@example.net' to='bench@localhost'`)), true],
    ['astral characters', item('a', message('😀 𝄞 ok')), true],
    ['an empty delay with an end tag', item('a', message('x')).replace(`/><message`, `></delay><message`), true],
    ['the namespace declared after other attributes', item('a', `<message to='bench@localhost' xmlns="jabber:client"><body>x</body></message>`), true],
    ['a self-closing message', item('a', `<message xmlns='jabber:client' from='p@example.net'/>`), true],
    [']]> in an attribute', item(']]>', message('x')), false],
    ['a tab in an attribute', item('a', message('x', `from='bench@localhost/a\tb' to='p@example.net'`)), false],
    ['a delay with text', item('a', message('x')).replace(`/><message`, `>Offline</delay><message`), false],
    ['a delay end tag with a space', item('a', message('x')).replace(`/><message`, `></delay ><message`), false],
    ['a message without its own namespace', item('a', message('x').replace(` xmlns='jabber:client'`, '')), false],
    ['a character reference', item('a', message('&#x1F600;')), false],
    ['a comment inside', item('a', message('x<!-- c -->y')), false],
    ['a prefixed attribute on the result', item('a', message('x')).replace(`id='a'`, `id='a' xmlns:x='urn:xporta:0' x:with='w@example.net'`), false],
    ['text inside the forwarded element', item('a', message('x')).replace('</forwarded>', 'x</forwarded>'), false],
  ])('takes %s from the text only if the verbatim subset covers it', async (_label, body, taken) => {
    const result = await same([archive(body)]);
    const record = 'events' in result ? archived(result.events)[0] : undefined;
    if (record?.kind !== 'archive') throw new Error('no archive record');
    // A message taken from the text keeps it; one the parser built has none.
    expect(storedText(record.stanza, 'jabber:client') !== undefined).toBe(taken);
    if (taken) expect(parseElement(serializeElement(record.stanza, 'urn:xmpp:forward:0'), 'urn:xmpp:forward:0')).toEqual(record.stanza);
  });

  it('copies a taken message with its namespace declared right after its name', async () => {
    const events = await same([archive(item('a', `<message to='bench@localhost' xmlns="jabber:client" type='chat'><body>x</body></message>`))]);
    const record = 'events' in events ? archived(events.events)[0] : undefined;
    if (record?.kind !== 'archive') throw new Error('no archive record');
    expect(storedText(record.stanza, 'jabber:client')).toBe(`<message to='bench@localhost' type='chat'><body>x</body></message>`);
    expect(serializeElement(record.stanza, 'urn:xmpp:forward:0')).toBe(
      `<message xmlns='jabber:client' to='bench@localhost' type='chat'><body>x</body></message>`,
    );
  });

  it('reports errors after taken items at the same line and column', async () => {
    const items = Array.from({ length: 50 }, (_, i) => item(`i${i}`, message(`body ${i} Grüße 😀`)));
    for (const broken of [
      `<result xmlns='urn:xmpp:mam:2' id='x'><forwarded xmlns='urn:xmpp:forward:0'></result>`,
      `<result xmlns='urn:xmpp:mam:2' id='x'>\u0001</result>`,
      `<result xmlns='urn:xmpp:mam:2' id='x'>&bogus;</result>`,
      `<result xmlns='urn:xmpp:mam:2'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z'/>${message('x')}</forwarded></result>`,
    ]) {
      for (const joiner of ['\n', '', '  ', '\r\n']) {
        const doc = HEAD + [...items.slice(0, 25), broken, ...items.slice(25)].join(joiner) + TAIL;
        const result = await same([doc]);
        expect(result).toHaveProperty('error');
        await same(splitAt(doc, [9, 100, 1]));
      }
    }
    // The document ends inside an item.
    const cut = archive(...items).slice(0, -TAIL.length - 20);
    expect(await same([cut])).toHaveProperty('error');
    await same(splitAt(cut, [64]));
  });

  it('takes a stamp as the parser does, in the usual form or not', async () => {
    const stamps = [
      '2024-01-01T00:00:00Z',
      '0001-01-01T00:00:00Z',
      '9999-12-31T23:59:60Z',
      '0000-01-01T00:00:00Z',
      '2024-00-01T00:00:00Z',
      '2024-13-01T00:00:00Z',
      '2024-01-00T00:00:00Z',
      '2024-01-32T00:00:00Z',
      '2024-01-01T24:00:00Z',
      '2024-01-01T00:60:00Z',
      '2024-01-01T00:00:61Z',
      '2024-01-01T00:00:00z',
      '2024-01-01 00:00:00Z',
      '2024-1-01T00:00:00ZZ',
      '2024-01-01T00:00:0xZ',
      '2024-01-01T00:00:00.123Z',
      '2024-01-01T01:00:00+01:00',
      '2024-01-01T00:00:00',
    ];
    for (const stamp of stamps) {
      const result = await same([archive(item('a', message('x')), item('b', message('y'), stamp))]);
      if ('events' in result) expect(archived(result.events)).toHaveLength(2);
    }
  });

  it('leaves an item with a lone surrogate to the parser, and takes the others of its slice, given as text or as encoded bytes', async () => {
    const doc = archive(item('a', message('x')), item('b', message('y \uD800 z')), item('c', message('w')));
    const result = await same([doc]);
    const records = 'events' in result ? archived(result.events) : [];
    expect(records.map((r) => r.kind === 'archive' && storedText(r.stanza, 'jabber:client') !== undefined)).toEqual([true, false, true]);
    // As bytes, the surrogate's encoding (ED A0 80) is not UTF-8.
    const [before, after] = doc.split('\uD800') as [string, string];
    const bytes = Buffer.concat([Buffer.from(before), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(after)]);
    expect(await same([bytes])).toHaveProperty('error');
    expect(await same(splitAt(doc.replace('\uD800', '\uD83D\uDE00'), [7, 64]).map((s) => Buffer.from(s)))).toHaveProperty('events');
  });

  it('applies the depth and size limits as the parser does', async () => {
    const deep = item('d', message('<a><b><c><d>x</d></c></b></a>'));
    const doc = archive(item('a', message('x')), deep);
    for (const maxDepth of [7, 8, 9, 10, 11, 12]) await same([doc], { maxDepth });
    const size = Buffer.byteLength(deep);
    for (let maxElementBytes = size - 4; maxElementBytes <= size + 4; maxElementBytes++) await same([doc], { maxElementBytes });
  });

  it('agrees with the parser on mutated documents', async () => {
    const base = archive(
      ...Array.from({ length: 6 }, (_, i) => item(`m${i}`, message(`b ${i} &amp; ü 😀`, `from='peer${i}@example.net/r' to='bench@localhost' type='chat' xml:lang='en'`))),
    );
    const start = HEAD.length;
    const alphabet = ['<', '>', '/', '&', "'", '"', '=', ' ', '\n', '\r', '\u0000', '\uFFFE', '\uD800', 'x', ':', ']]>', '<!--', 'xmlns', '&lt;'];
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: start, max: base.length - TAIL.length }),
        fc.integer({ min: 0, max: 3 }),
        fc.constantFrom(...alphabet),
        fc.constantFrom(1, 3, 64, 100_000),
        async (at, remove, insert, chunk) => {
          const doc = base.slice(0, at) + insert + base.slice(at + remove);
          await same(splitAt(doc, [chunk]));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('measureText', () => {
  it('counts UTF-8 bytes, characters XML cannot carry, line breaks and the last line as a parser does', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.oneof(fc.constantFrom('\r', '\n', '\t', '\u0001', '\uFFFE', '\uD83D', '\uDE00', 'é', '€'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })) }), (text) => {
        const m = measureText(text, 0, text.length);
        expect(m.bytes).toBe(Buffer.byteLength(text, 'utf8'));
        expect(m.xmlChars).toBe(hasOnlyXmlChars(text));
        const lines = text.split(/\r\n|\r|\n/);
        expect(m.lineBreaks).toBe(lines.length - 1);
        expect(m.lastLineColumns).toBe([...(lines[lines.length - 1] ?? '')].length);
      }),
      { numRuns: 500 },
    );
  });
});
