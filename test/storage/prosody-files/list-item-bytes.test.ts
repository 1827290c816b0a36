/**
 * The byte encoder of `.list` items against the general path (archiveItemToList + serializeListItem):
 * the same text for every stanza kept as stored text, and no output where it gives way.
 */
import { describe, expect, it } from 'vitest';
import { NS } from '../../../src/records/model.js';
import type { ArchiveItem } from '../../../src/storage/prosody/archive.js';
import { LuaBytes } from '../../../src/storage/prosody-files/list-item-bytes.js';
import { archiveItemToList } from '../../../src/storage/prosody-files/list-items.js';
import { serializeListItem } from '../../../src/storage/prosody-files/lua-serialize.js';
import { parseElement, scannedElement, storedElement } from '../../../src/xml/xml.js';

function general(item: ArchiveItem, keepEmptyWith: boolean): string {
  return serializeListItem(archiveItemToList(item, { keepEmptyWith }));
}

function encoded(item: ArchiveItem, keepEmptyWith: boolean): string | undefined {
  const bytes = new LuaBytes(16);
  bytes.ascii('before;');
  const ok = bytes.listItem(item, keepEmptyWith);
  const text = bytes.bytes.toString('latin1');
  if (!ok) {
    expect(text).toBe('before;');
    return undefined;
  }
  expect(text.startsWith('before;')).toBe(true);
  return text.slice('before;'.length);
}

const STANZAS = [
  `<message to='a@example.net' from='b@example.org/r' type='chat' id='x1' xml:lang='en'><body>Hello &amp; &lt;bye&gt; &apos;q&apos; &quot;d&quot;</body></message>`,
  `<message to="a@example.net" type="chat"><body>Grüße 😀 ☀️ \\ " '\u007f\u0085</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
  `<message><encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2'>abc=</key><iv>iv</iv></header><payload>p</payload></encrypted><body>b</body><origin-id xmlns='urn:xmpp:sid:0' id='o'/></message>`,
  `<message>\n  <body>  spaced\ttext\n</body>\n  <x xmlns='jabber:x:oob'><url>http://e/?a=1&amp;b=2</url><desc/></x>\n</message>`,
  `<message><body/><thread parent='p &amp; q'>t</thread><x xmlns='urn:a'><y xmlns='jabber:client'><z/></y></x><w xmlns=''>empty ns</w></message>`,
  `<message type = 'error' ><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message >`,
  `<message/>`,
];

const ITEMS: Omit<ArchiveItem, 'value'>[] = [
  { key: 'k1', when: 1704067200, with: 'a@example.net' },
  { key: 'ключ "1"', when: 1704067200.25, with: '' },
  { key: '', when: 0, with: 'x@y' },
];

describe('LuaBytes.listItem', () => {
  it('writes what the general path writes, for stored stanzas of every shape', () => {
    let compared = 0;
    for (const xml of STANZAS) {
      for (const stanza of [storedElement(xml, NS.client), storedElement(xml.replace(/^<message/, "<message xmlns='jabber:client'"), NS.client)]) {
        for (const fields of ITEMS) {
          for (const keepEmptyWith of [true, false]) {
            const item = { ...fields, value: stanza };
            const text = encoded(item, keepEmptyWith);
            expect(text, xml).toBe(general({ ...fields, value: parseElement(xml, NS.client) }, keepEmptyWith));
            compared++;
          }
        }
      }
    }
    expect(compared).toBe(STANZAS.length * 2 * ITEMS.length * 2);
  });

  it('uses the attributes a scanned element was given for its root', () => {
    const stanza = scannedElement(`<message to='a@b' id='1'><body>x</body></message>`, NS.client, 'message', { to: 'a@b', id: '1' });
    const item = { key: 'k', when: 5, with: 'a@b', value: stanza };
    expect(encoded(item, true)).toBe(general(item, true));
  });

  it('gives way, writing nothing, where a parser would normalise or the general path decides', () => {
    const cases = [
      `<message><body>line\r\nbreak</body></message>`,
      `<message><body a='tab\there'>x</body></message>`,
      `<message stamp='2020-01-01T00:00:00Z'><body>x</body></message>`,
    ];
    for (const xml of cases) {
      const stanza = storedElement(xml, NS.client);
      const item = { key: 'k', when: 1, with: '', value: stanza };
      expect(encoded(item, true), xml).toBeUndefined();
    }
    // Not a stored element, or a time the general path refuses.
    expect(encoded({ key: 'k', when: 1, with: '', value: parseElement('<message/>', NS.client) }, true)).toBeUndefined();
    expect(encoded({ key: 'k', when: -1, with: '', value: storedElement('<message/>', NS.client) }, true)).toBeUndefined();
  });

  it('gives way past the table depth Prosody can serialize', () => {
    const deep = `<message>${'<a>'.repeat(130)}${'</a>'.repeat(130)}</message>`;
    const stanza = storedElement(deep, NS.client);
    expect(encoded({ key: 'k', when: 1, with: '', value: stanza }, true)).toBeUndefined();
    const fits = `<message>${'<a>'.repeat(120)}${'</a>'.repeat(120)}</message>`;
    const item = { key: 'k', when: 1, with: '', value: storedElement(fits, NS.client) };
    expect(encoded(item, true)).toBe(general({ ...item, value: parseElement(fits, NS.client) }, true));
  });
});
