import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { serializeXmlValue } from '../../src/storage/prosody/stanza.js';
import { NS, element, type XmlElement, type XmlNode } from '../../src/records/model.js';
import { scanVerbatim } from '../../src/xml/verbatim.js';
import { parseElement, serializeElement, storedElement } from '../../src/xml/xml.js';
import { payload } from '../support/arbitraries.js';

/** Elements inside the verbatim subset, so that mutations start from accepted texts. */
const { plain } = fc.letrec<{ plain: XmlElement; node: XmlNode }>((tie) => ({
  plain: fc.record({
    name: fc.constantFrom('message', 'body', 'a', 'x-y', 'q.1'),
    xmlns: fc.constantFrom(NS.client, 'urn:example:a', ''),
    attrs: fc.dictionary(fc.constantFrom('id', 'to', 'xml:lang', 'type'), fc.constantFrom('', 'x', "it's", '<&>', 'a b'), { maxKeys: 3 }),
    children: fc.array(tie('node'), { maxLength: 3, depthIdentifier: 'plain' }),
  }),
  node: fc.oneof({ depthSize: 'small', depthIdentifier: 'plain' }, fc.constantFrom('text', ' ', 'a & b', '1 < 2', '"q"', 'é😀'), tie('plain')),
}));

/** What a parser makes of the text, or the error it raises. */
function parsed(xml: string, ns: string): unknown {
  try {
    return parseElement(xml, ns);
  } catch (err) {
    return err;
  }
}

describe('verbatim stored elements', () => {
  it("accepts what Prosody's serialiser writes and copies it with the root's namespace declared", () => {
    const stored = "<message xml:lang='en' from='a@b/c' to='d@e' type='chat' id='m1'><body>1 &lt; 2 &amp;&amp; &apos;q&apos; &quot;</body><origin-id xmlns='urn:xmpp:sid:0' id='x'/></message>";
    expect(scanVerbatim(stored, NS.client)).toEqual({ name: 'message', xmlns: NS.client, declaresNamespace: false, depth: 2 });
    const el = storedElement(stored, NS.client);
    // Serialised by copying, with the root's namespace declared, whatever the parent's.
    expect(serializeElement(el, NS.forward)).toBe(`<message xmlns='jabber:client'${stored.slice('<message'.length)}`);
    expect(el).toEqual(parseElement(stored, NS.client));
    // Under a parent in another namespace the copy keeps its meaning.
    const wrapped = serializeElement(element('forwarded', NS.forward, {}, [el]));
    expect(parseElement(wrapped)).toEqual(element('forwarded', NS.forward, {}, [parseElement(stored, NS.client)]));
  });

  it('declares an empty default namespace on a root that has none', () => {
    expect(serializeElement(storedElement('<a><b/></a>'), 'urn:p')).toBe("<a xmlns=''><b/></a>");
    expect(parseElement(serializeElement(element('p', 'urn:p', {}, [storedElement('<a><b/></a>')])))).toEqual(
      element('p', 'urn:p', {}, [element('a', '', {}, [element('b', '')])]),
    );
  });

  it.each([
    ['a comment', '<a><!-- c --></a>'],
    ['CDATA', '<a><![CDATA[x]]></a>'],
    ['a character reference', '<a>&#65;</a>'],
    ['an unknown entity', '<a>&nbsp;</a>'],
    ['a bare ampersand', "<a b='&'/>"],
    ['a prefixed element', "<p:a xmlns:p='urn:p'/>"],
    ['a prefixed attribute', "<a xmlns:p='urn:p' p:b='1'/>"],
    ['a duplicate attribute', "<a b='1' b='2'/>"],
    ['attributes without space between', "<a b='1'c='2'/>"],
    ['a mismatched end tag', '<a><b></a></b>'],
    ['an unclosed element', '<a><b/>'],
    ['text after the root', '<a/>x'],
    ['a second root', '<a/><b/>'],
    ['leading space', ' <a/>'],
    [']]> in text', '<a>]]></a>'],
    ['a control character', '<a>\u0001</a>'],
    ['a lone surrogate', '<a>\uD800</a>'],
    ['the XML namespace as default', "<a xmlns='http://www.w3.org/XML/1998/namespace'/>"],
    ['an entity in xmlns', "<a xmlns='urn:a&amp;b'/>"],
    ['< in an attribute', "<a b='<'/>"],
    ['a processing instruction', '<a><?pi x?></a>'],
    ['a non-ASCII name', '<café/>'],
    ['a DOCTYPE', '<!DOCTYPE a><a/>'],
  ])('leaves %s to the parser', (_, xml) => {
    expect(scanVerbatim(xml, NS.client)).toBeUndefined();
  });

  it('gives the same element as the parser for any payload, in both serialisations', () => {
    fc.assert(
      fc.property(payload(), (el) => {
        for (const text of [serializeXmlValue(el), serializeElement(el)]) {
          const stored = storedElement(text, NS.client);
          expect(stored).toEqual(parseElement(text, NS.client));
          expect(parseElement(serializeElement(stored, NS.forward), NS.forward)).toEqual(parseElement(text, NS.client));
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('accepts a mutated text only when the parser accepts it, with the same meaning', () => {
    const edit = fc.record({
      at: fc.nat(),
      remove: fc.integer({ min: 0, max: 3 }),
      insert: fc.constantFrom('', '<', '>', '/', '&', ';', "'", '"', '=', ' ', 'a', ':', '!', '?', '<a>', '</a>', '&amp;', 'xmlns', ']]>', '\u0000'),
    });
    let accepted = 0;
    fc.assert(
      fc.property(plain, fc.array(edit, { minLength: 1, maxLength: 3 }), (el, edits) => {
        let text = serializeXmlValue(el);
        for (const { at, remove, insert } of edits) {
          const i = at % (text.length + 1);
          text = text.slice(0, i) + insert + text.slice(i + remove);
        }
        const scanned = scanVerbatim(text, NS.client);
        if (!scanned) return;
        accepted++;
        const meaning = parsed(text, NS.client);
        expect(meaning, text).not.toBeInstanceOf(Error);
        expect(parseElement(serializeElement(storedElement(text, NS.client), NS.forward)), text).toEqual(meaning);
      }),
      { numRuns: 3000 },
    );
    // The property says nothing if every mutation were refused.
    expect(accepted).toBeGreaterThan(100);
  });
});
