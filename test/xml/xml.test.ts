import { setFlagsFromString } from 'node:v8';
import { SaxesParser } from 'saxes';
import { describe, expect, it } from 'vitest';
import { element } from '../../src/records/model.js';
import { listen, parseElement, serializeElement, XmlCharError, XmlFragmentError } from '../../src/xml/xml.js';

describe('element codec', () => {
  it('parses a Prosody-stored stanza into jabber:client with xml:lang and nested namespaces', () => {
    const el = parseElement(
      "<message xml:lang='en' from='alice@localhost/populate' to='bob@localhost' type='chat' id='m1'><body>5 &lt; 6 &amp;&amp; 7</body><origin-id id='x' xmlns='urn:xmpp:sid:0'/></message>",
      'jabber:client',
    );
    expect(el).toEqual(
      element('message', 'jabber:client', { 'xml:lang': 'en', from: 'alice@localhost/populate', to: 'bob@localhost', type: 'chat', id: 'm1' }, [
        element('body', 'jabber:client', {}, ['5 < 6 && 7']),
        element('origin-id', 'urn:xmpp:sid:0', { id: 'x' }),
      ]),
    );
  });

  it('round-trips awkward text and attributes, including foreign-namespace attributes', () => {
    const el = element('x', 'urn:a', { a: `<&'">\t\n\r`, '{urn:b}c': 'v', 'xml:lang': 'de' }, [
      ']]> 😀 \r\n\t ',
      element('y', 'urn:b', {}, ['\u00a0']),
    ]);
    expect(parseElement(serializeElement(el))).toEqual(el);
  });

  it('refuses characters XML 1.0 cannot carry', () => {
    expect(() => serializeElement(element('x', 'urn:a', {}, ['a\u0001']))).toThrow(XmlCharError);
    expect(() => serializeElement(element('x', 'urn:a', { v: '\uD800' }))).toThrow(XmlCharError);
  });

  it('refuses DOCTYPE and malformed input with a position', () => {
    expect(() => parseElement('<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')).toThrow(XmlFragmentError);
    expect(() => parseElement('<x><y></x>')).toThrow(/line 1/);
  });

  describe('listen', () => {
    it('delivers every saxes event to its handler', () => {
      const parser = new SaxesParser({ xmlns: true, position: true });
      const seen: string[] = [];
      listen(parser, {
        xmldecl: () => seen.push('xmldecl'),
        doctype: () => seen.push('doctype'),
        processinginstruction: () => seen.push('pi'),
        comment: () => seen.push('comment'),
        opentagstart: () => seen.push('opentagstart'),
        attribute: () => seen.push('attribute'),
        opentag: () => seen.push('opentag'),
        text: () => seen.push('text'),
        cdata: () => seen.push('cdata'),
        closetag: () => seen.push('closetag'),
        end: () => seen.push('end'),
        ready: () => seen.push('ready'),
        error: () => seen.push('error'),
      });
      parser.write("<?xml version='1.0'?><!DOCTYPE r><r a='1'><?pi x?><!--c-->t<![CDATA[d]]></r></").close();
      for (const event of ['xmldecl', 'doctype', 'pi', 'comment', 'opentagstart', 'attribute', 'opentag', 'text', 'cdata', 'closetag', 'end', 'ready', 'error']) {
        expect(seen, event).toContain(event);
      }
    });

    it('keeps the parser out of V8 dictionary mode, which made parsing three times slower', () => {
      setFlagsFromString('--allow-natives-syntax');
      const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;
      const handled = new SaxesParser({ xmlns: true, position: true });
      listen(handled, { xmldecl() {}, doctype() {}, processinginstruction() {}, comment() {}, opentagstart() {}, opentag() {}, text() {}, cdata() {}, closetag() {}, error() {} });
      expect(hasFastProperties(handled)).toBe(true);
      // The reason listen() exists: saxes' own on(), used for the same handlers.
      const viaOn = new SaxesParser({ xmlns: true, position: true });
      for (const name of ['xmldecl', 'doctype', 'processinginstruction', 'comment', 'opentagstart', 'opentag', 'text', 'cdata', 'closetag', 'error'] as const) {
        viaOn.on(name, () => {});
      }
      expect(hasFastProperties(viaOn)).toBe(false);
    });
  });
});
