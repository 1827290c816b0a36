import { describe, expect, it } from 'vitest';
import { element } from '../../src/xep0227/model.js';
import { parseElement, serializeElement, XmlCharError, XmlFragmentError } from '../../src/xep0227/xml.js';

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
});
