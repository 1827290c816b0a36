import { describe, expect, it } from 'vitest';
import { NS, element } from '../../../src/records/model.js';
import { parseElement } from '../../../src/xml/xml.js';
import {
  LuaTable,
  decodeJson,
  deserializeValue,
  encodeJson,
  fromPreserialized,
  mergeKeyval,
  parseXmlValue,
  serializeValue,
  serializeXmlValue,
  splitKeyval,
  toPreserialized,
} from '../../../src/storage/prosody/index.js';
import { ARCHIVE_ROWS, CAROL_ROSTER_ROWS, OFFLINE_ROWS, PEP_ITEM_ROWS, PRIVATE_ROWS, VCARD_ROWS } from '../../support/storage/prosody-rows.js';
import { comparable } from '../../support/storage/compare.js';
import { prosodyLuaAvailable, runProsodyLua } from '../../support/storage/lua.js';

describe('preserialized stanzas (st.preserialize)', () => {
  it('reads the pending subscribe presence from the roster metadata, jabber:client by default', () => {
    const meta = (decodeJson(CAROL_ROSTER_ROWS.find((r) => r.key === '')!.value) as LuaTable).get(false) as LuaTable;
    const presence = (meta.get('pending') as LuaTable).get('bob@localhost')!;
    expect(fromPreserialized(presence)).toEqual(
      element('presence', NS.client, { 'xml:lang': 'en', from: 'bob@localhost/populate', to: 'carol@localhost', type: 'subscribe' }, [
        element('nick', 'http://jabber.org/protocol/nick', {}, ['Bob Example']),
      ]),
    );
    expect(encodeJson(toPreserialized(fromPreserialized(presence)))).toBe(encodeJson(presence));
  });

  it.each(PRIVATE_ROWS.map((r) => [r.key, r.value]))('round-trips the private element %s byte for byte', (_key, value) => {
    const el = fromPreserialized(decodeJson(value), '');
    expect(encodeJson(toPreserialized(el))).toBe(value);
  });

  it('reads the vCard split across keyval rows once merged, and splits it the same way again', () => {
    const entries = VCARD_ROWS.map((r) => ({ key: r.key, value: deserializeValue(r.type, r.value) }));
    const vcard = fromPreserialized(mergeKeyval(entries), NS.vcardTemp);
    expect(vcard.name).toBe('vCard');
    expect(vcard.xmlns).toBe(NS.vcardTemp);
    expect(vcard.children.map((c) => (typeof c === 'string' ? c : c.name))).toEqual(['FN', 'N', 'PHOTO']);
    const byKey = (a: { key: string }, b: { key: string }): number => (a.key < b.key ? -1 : 1);
    const again = splitKeyval(toPreserialized(vcard)).map(({ key, value }) => ({ key, type: serializeValue(value).type, value: comparable(value) }));
    const stored = VCARD_ROWS.map(({ key, type, value }) => ({ key, type, value: comparable(deserializeValue(type, value)) }));
    expect(again.sort(byKey)).toEqual(stored.sort(byKey));
  });

  it('gives xmlns to every element below the first foreign one, as util/xmppstream.lua does', () => {
    const msg = element('message', NS.client, { to: 'a@b' }, [
      element('body', NS.client, {}, ['hi']),
      element('forwarded', NS.forward, {}, [element('message', NS.client, {}, [element('body', NS.client, {}, ['x'])])]),
    ]);
    const table = toPreserialized(msg);
    expect(encodeJson(table)).toBe(
      '{"attr":{"to":"a@b"},"name":"message","__array":[{"attr":{},"name":"body","__array":["hi"]},{"attr":{"xmlns":"urn:xmpp:forward:0"},"name":"forwarded","__array":[{"attr":{"xmlns":"jabber:client"},"name":"message","__array":[{"attr":{"xmlns":"jabber:client"},"name":"body","__array":["x"]}]}]}]}',
    );
    expect(fromPreserialized(table)).toEqual(msg);
  });

  it('keys namespaced attributes uri\\x01local (and reads the uri|local form st.deserialize accepts)', () => {
    const el = element('x', 'urn:a', { '{urn:b}c': 'v', 'xml:lang': 'de' });
    expect(encodeJson(toPreserialized(el))).toBe('{"attr":{"urn:b\\u0001c":"v","xml:lang":"de","xmlns":"urn:a"},"name":"x"}');
    expect(fromPreserialized(decodeJson('{"attr":{"urn:b|c":"v","xmlns":"urn:a","xml:lang":"de"},"name":"x"}'))).toEqual(el);
  });

  it('merges adjacent text and drops empty strings, as a parser would', () => {
    const table = LuaTable.of({ name: 'body', attr: new LuaTable() }, ['a', '', 'b']);
    expect(fromPreserialized(table).children).toEqual(['ab']);
  });
});

describe('xml values (util/stanza.lua tostring)', () => {
  const stored = [...ARCHIVE_ROWS, ...OFFLINE_ROWS, ...PEP_ITEM_ROWS];

  it.each(stored.map((r) => [`${r.store}/${r.key}`, r.value]))('reads %s and writes it back equivalently', (_name, value) => {
    const el = parseXmlValue(value);
    const written = serializeXmlValue(el);
    expect(parseXmlValue(written)).toEqual(el);
  });

  it('omits xmlns on a top-level jabber:client stanza and where a child shares its parent’s', () => {
    const stored = parseXmlValue(ARCHIVE_ROWS[0]!.value);
    expect(stored.xmlns).toBe(NS.client);
    // What was read from storage is written back as it was stored.
    expect(serializeXmlValue(stored)).toBe(ARCHIVE_ROWS[0]!.value);
    // A copy is an ordinary element, which the serialiser writes itself.
    const el = { ...stored };
    expect(serializeXmlValue(el)).toBe(
      "<message xml:lang='en' from='alice@localhost/populate' to='bob@localhost' type='chat' id='msg-0-42689557'><body>over tomorrow bookmark archive.</body><origin-id xmlns='urn:xmpp:sid:0' id='42689557-9ca4-4d72-8b12-e1f695eb9a8c'/></message>",
    );
    expect(serializeXmlValue({ ...parseXmlValue(PEP_ITEM_ROWS[1]!.value) })).toBe(
      "<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true' name='XMPP Standards 💬'><nick>alice</nick><extensions><state xmlns='urn:example:client-state' pinned='true'/></extensions></conference>",
    );
  });

  it('escapes \' " & < > in text and attributes, single-quotes attributes, prefixes foreign attributes', () => {
    const el = element('message', NS.client, { id: `a'b"c<&>`, '{urn:x}y': 'z' }, [element('body', NS.client, {}, [`5 < 6 && 'q' "d" > 3`])]);
    expect(serializeXmlValue(el)).toBe(
      "<message id='a&apos;b&quot;c&lt;&amp;&gt;' xmlns:ns1='urn:x' ns1:y='z'><body>5 &lt; 6 &amp;&amp; &apos;q&apos; &quot;d&quot; &gt; 3</body></message>",
    );
    expect(parseXmlValue(serializeXmlValue(el))).toEqual(el);
    // A stanza written by Prosody's XEP-0227 import carries the namespace explicitly: the same element.
    expect(parseXmlValue("<message xmlns='jabber:client'><body>x</body></message>")).toEqual(parseElement('<message><body>x</body></message>', NS.client));
  });

  it.runIf(prosodyLuaAvailable())('is read by util/xml.lua and printed back identically by util/stanza.lua', () => {
    const values = stored.map((r) => serializeXmlValue(parseXmlValue(r.value)));
    const script = `local xml = require "util.xml"; for line in io.lines() do print(tostring(assert(xml.parse(line)))) end`;
    const out = runProsodyLua(script, `${values.join('\n')}\n`).trimEnd().split('\n');
    out.forEach((text, i) => expect(parseXmlValue(text)).toEqual(parseXmlValue(values[i]!)));
  });

  it.runIf(prosodyLuaAvailable())('preserialized tables are read back by st.deserialize into the same stanza', () => {
    const el = element('message', NS.client, { to: 'a@b', '{urn:x}y': 'z', 'xml:lang': 'en' }, [
      element('body', NS.client, {}, ["it's <b>"]),
      element('x', 'urn:x', {}, [element('y', 'urn:x', {}, ['1']), element('z', 'urn:z', {})]),
    ]);
    const script = `local json, st = require "util.json", require "util.stanza"; print(tostring(st.deserialize(json.decode(io.read("a")))))`;
    expect(parseXmlValue(runProsodyLua(script, encodeJson(toPreserialized(el))).trim())).toEqual(el);
  });
});
