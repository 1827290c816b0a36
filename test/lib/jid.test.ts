import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  JidError,
  bareJid,
  formatJid,
  hostAllowed,
  isValidJid,
  normaliseDomain,
  normaliseLocalpart,
  normaliseResource,
  parseJid,
  storedBareJid,
} from '../../src/lib/jid.js';
import type { JidPart } from '../../src/lib/jid.js';
import { createRecordRewriter, rewriteRecord, rewriteRecords } from '../../src/transfer/rename.js';
import type {
  ArchiveRecord,
  BlocklistRecord,
  OfflineRecord,
  OpaqueRecord,
  PendingSubscriptionRecord,
  PepItemRecord,
  PepNodeRecord,
  PrivacyRecord,
  PrivateRecord,
  RosterRecord,
  UserRecord,
  VCardRecord,
  XmlElement,
} from '../../src/records/model.js';
import { NS, element } from '../../src/records/model.js';

describe('parseJid: valid JIDs', () => {
  const cases: readonly (readonly [string, string, string])[] = [
    ['plain bare JID', 'alice@example.com', 'alice@example.com'],
    ['case folded in localpart and domain', 'Alice@Example.COM', 'alice@example.com'],
    ['punctuation nodeprep allows', 'Zoë.O_Brien+tag%~@LocalHost', 'zoë.o_brien+tag%~@localhost'],
    ['fullwidth letters (NFKC width mapping)', 'ＡＢＣ@example.com', 'abc@example.com'],
    ['domain only', 'example.com', 'example.com'],
    ['localhost', 'localhost', 'localhost'],
    ['resource keeps its case', 'alice@localhost/Res', 'alice@localhost/Res'],
    ['resource may contain / and @', 'alice@example.com/a/b@c', 'alice@example.com/a/b@c'],
    ['domain with resource, no localpart', 'example.com/x', 'example.com/x'],
    ['one trailing dot stripped', 'alice@example.com.', 'alice@example.com'],
    ['bracketed IPv6', 'alice@[::1]', 'alice@[::1]'],
    ['IPv6 lower-cased', 'alice@[2001:DB8::1]', 'alice@[2001:db8::1]'],
    ['IPv4 literal', 'alice@192.168.0.1', 'alice@192.168.0.1'],
    ['nodeprep folds ß to ss (B.2), unlike PRECIS', 'Straße@example.com', 'strasse@example.com'],
    ['capital sharp s', 'STRAẞE@example.com', 'strasse@example.com'],
    ['sigma folds to σ, also at the end', 'ΟΔΟΣ@example.com', 'οδοσ@example.com'],
    ['final sigma folds to σ', 'οδος@example.com', 'οδοσ@example.com'],
    ['dotted capital I', 'İstanbul@example.com', 'i\u0307stanbul@example.com'],
    ['iota subscript expands (full case folding)', 'ᾼ@example.com', 'αι@example.com'],
    ['Kelvin sign', '\u212Aelvin@example.com', 'kelvin@example.com'],
    ['compatibility ligature', 'ﬁle@example.com', 'file@example.com'],
    ['underscore in domain labels', 'alice@conference_1.example.com', 'alice@conference_1.example.com'],
    ['emoji with skin tone accepted', '👍🏽@example.com', '👍🏽@example.com'],
    ['emoji presentation selector mapped out (B.1)', '❤\uFE0F@example.com', '❤@example.com'],
    ['soft hyphen mapped out (B.1)', 'a\u00ADb@example.com', 'ab@example.com'],
    ['Hebrew localpart', '\u05D0\u05D1@example.com', '\u05D0\u05D1@example.com'],
    ['Hebrew with a digit inside', '\u05D01\u05D1@example.com', '\u05D01\u05D1@example.com'],
    ['Arabic localpart', 'مرحبا@example.com', 'مرحبا@example.com'],
    ['IDN domain kept in Unicode', 'user@Bücher.Example', 'user@bücher.example'],
    ['fullwidth domain and full stop', 'user@ＥＸＡＭＰＬＥ．com', 'user@example.com'],
    ['ideographic full stop separates labels', 'user@例え。テスト', 'user@例え.テスト'],
    ['ACE labels are plain ASCII', 'a@xn--bcher-kva.example', 'a@xn--bcher-kva.example'],
    ['Devanagari label with combining marks', 'a@हिन्दी.example', 'a@हिन्दी.example'],
    ['reserved device name is a valid localpart', 'con@example.com', 'con@example.com'],
    ['leading dot', '.hidden@example.com', '.hidden@example.com'],
    ['two dots inside', 'a..b@example.com', 'a..b@example.com'],
    ['resource spaces kept', 'a@b/ my phone ', 'a@b/ my phone '],
    ['resource NFC', 'a@b/Re\u0301s', 'a@b/R\u00E9s'],
    ['resource not width-mapped', 'a@b/ＡＢＣ', 'a@b/ＡＢＣ'],
    ['1023-byte ASCII localpart', `${'x'.repeat(1023)}@example.com`, `${'x'.repeat(1023)}@example.com`],
    ['1023-byte non-ASCII localpart', `${'é'.repeat(511)}a@example.com`, `${'é'.repeat(511)}a@example.com`],
  ];

  it.each(cases)('%s: %j', (_label, input, expected) => {
    expect(formatJid(parseJid(input))).toBe(expected);
    expect(isValidJid(input)).toBe(true);
    // Normalisation is idempotent: a normalised JID is its own normal form.
    expect(formatJid(parseJid(expected))).toBe(expected);
  });
});

describe('parseJid: invalid JIDs', () => {
  const cases: readonly (readonly [string, string, JidPart])[] = [
    ['empty string', '', 'jid'],
    ['empty localpart', '@example.com', 'localpart'],
    ['second @: domainpart cannot contain @ (localpart ends at the first @)', 'a@b@c', 'domainpart'],
    ['empty domainpart', 'alice@', 'domainpart'],
    ['only a resource', '/res', 'domainpart'],
    ['empty resourcepart', 'alice@example.com/', 'resourcepart'],
    ['space', 'a b@example.com', 'localpart'],
    ['double quote', 'a"b@example.com', 'localpart'],
    ['ampersand', 'a&b@example.com', 'localpart'],
    ['apostrophe', "a'b@example.com", 'localpart'],
    ['colon', 'a:b@example.com', 'localpart'],
    ['less-than', 'a<b@example.com', 'localpart'],
    ['greater-than', 'a>b@example.com', 'localpart'],
    ['fullwidth solidus becomes / under NFKC', 'a／b@example.com', 'localpart'],
    ['fullwidth @ becomes @ under NFKC', 'a＠b@example.com', 'localpart'],
    ['no-break space', 'a\u00A0b@example.com', 'localpart'],
    ['NUL', 'a\u0000b@example.com', 'localpart'],
    ['C0 control', 'a\u0007b@example.com', 'localpart'],
    ['DEL', 'a\u007Fb@example.com', 'localpart'],
    ['C1 control', 'a\u0085b@example.com', 'localpart'],
    ['private use', '\uE000@example.com', 'localpart'],
    ['non-character', '\uFDD0@example.com', 'localpart'],
    ['plane-1 non-character', '\u{1FFFE}@example.com', 'localpart'],
    ['lone surrogate', 'a\uD800@example.com', 'localpart'],
    ['replacement character', '\uFFFD@example.com', 'localpart'],
    ['unassigned code point', '\u0378@example.com', 'localpart'],
    ['bidi override', 'a\u202Eb@example.com', 'localpart'],
    ['emoji tag sequence (C.9 tagging characters)', '🏴\u{E0067}\u{E0062}\u{E007F}@example.com', 'localpart'],
    ['only mapped-out characters', '\u200B@example.com', 'localpart'],
    ['bidi: Hebrew mixed with Latin', '\u05D0a\u05D1@example.com', 'localpart'],
    ['bidi: Hebrew ending in a digit', '\u05D01@example.com', 'localpart'],
    ['bidi: Hebrew starting with a digit', '1\u05D0@example.com', 'localpart'],
    ['1024-byte localpart', `${'x'.repeat(1024)}@example.com`, 'localpart'],
    ['1024-byte non-ASCII localpart', `${'é'.repeat(512)}@example.com`, 'localpart'],
    ['localpart ".."', '..@example.com', 'localpart'],
    ['localpart "."', '.@example.com', 'localpart'],
    ['two-dot leader becomes ".." under NFKC', '\u2025@example.com', 'localpart'],
    ['space in domain', 'alice@exa mple.com', 'domainpart'],
    ['dollar in domain', 'alice@exa$mple.com', 'domainpart'],
    ['emoji in domain', 'alice@😀.example', 'domainpart'],
    ['NUL in domain', 'alice@exa\u0000mple.com', 'domainpart'],
    ['empty label', 'alice@example..com', 'domainpart'],
    ['leading empty label', 'alice@.example.com', 'domainpart'],
    ['two trailing dots', 'alice@example.com..', 'domainpart'],
    ['just a dot', 'alice@.', 'domainpart'],
    ['64-byte label', `alice@${'a'.repeat(64)}.com`, 'domainpart'],
    ['64-byte non-ASCII label', `alice@${'ü'.repeat(32)}.com`, 'domainpart'],
    ['domain over 1023 bytes', `alice@${Array.from({ length: 17 }, () => 'a'.repeat(60)).join('.')}`, 'domainpart'],
    ['unclosed IPv6 bracket', 'alice@[::1', 'domainpart'],
    ['bracketed non-address', 'alice@[example.com]', 'domainpart'],
    ['IPv6 zone identifier', 'alice@[fe80::1%eth0]', 'domainpart'],
    ['unbracketed IPv6', 'alice@::1', 'domainpart'],
    ['IPv4 octet out of range', 'alice@999.1.1.1', 'domainpart'],
    ['numeric top-level label', 'alice@example.123', 'domainpart'],
    ['control character in resource', 'alice@example.com/res\u0000', 'resourcepart'],
    ['newline in resource', 'alice@example.com/a\nb', 'resourcepart'],
    ['lone surrogate in resource', 'alice@example.com/\uDC00', 'resourcepart'],
    ['1024-byte resource', `alice@example.com/${'r'.repeat(1024)}`, 'resourcepart'],
  ];

  it.each(cases)('%s: %j', (_label, input, part) => {
    let caught: unknown;
    try {
      parseJid(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(JidError);
    const err = caught as JidError;
    expect(err.part).toBe(part);
    expect(err.reason.length).toBeGreaterThan(0);
    expect(err.message).toBe(`invalid JID: ${err.reason}`);
    expect(isValidJid(input)).toBe(false);
  });

  it('names code points instead of echoing raw input in the reason', () => {
    expect(() => parseJid('a\u0000b@example.com')).toThrow(/U\+0000/);
    expect(() => parseJid('a\u202Eb@example.com')).toThrow(/U\+202E/);
  });
});

describe('part normalisers and helpers', () => {
  it('parses into parts, leaving absent parts absent', () => {
    expect(parseJid('Alice@Example.com/Phone')).toEqual({ local: 'alice', domain: 'example.com', resource: 'Phone' });
    const domainOnly = parseJid('Example.com');
    expect(domainOnly).toEqual({ domain: 'example.com' });
    expect('local' in domainOnly || 'resource' in domainOnly).toBe(false);
  });

  it('formats and takes the bare JID', () => {
    expect(formatJid({ local: 'a', domain: 'b', resource: 'c' })).toBe('a@b/c');
    expect(formatJid({ domain: 'b', resource: 'c' })).toBe('b/c');
    expect(bareJid('Alice@Example.com/Phone')).toBe('alice@example.com');
    expect(bareJid('Example.com/x')).toBe('example.com');
    expect(() => bareJid('a@b@c')).toThrow(JidError);
  });

  it('takes the bare form of a stored JID without normalising or validating it', () => {
    expect(storedBareJid('Alice@Example.com/Phone/2')).toBe('Alice@Example.com');
    expect(storedBareJid('a@b@c')).toBe('a@b@c');
    expect(storedBareJid('example.com')).toBe('example.com');
  });

  it('normalises parts on their own', () => {
    expect(normaliseLocalpart('ÄLICE')).toBe('älice');
    expect(normaliseDomain('EXAMPLE.com.')).toBe('example.com');
    expect(normaliseResource('Cafe\u0301')).toBe('Café');
  });

  it('never yields a localpart that is a path component or contains / or NUL', () => {
    for (const bad of ['../../etc/passwd', 'a/b', 'a\u0000b', '..', '.', '\u2025', '..\u200B']) {
      expect(() => normaliseLocalpart(bad), JSON.stringify(bad)).toThrow(JidError);
    }
    // Valid here; storage must still encode it before using it as a file name on Windows.
    expect(normaliseLocalpart('con')).toBe('con');
    expect(normaliseLocalpart('CON')).toBe('con');
  });

  it('localpart normalisation is idempotent and path-safe for arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (input) => {
        let out: string;
        try {
          out = normaliseLocalpart(input);
        } catch (err) {
          return err instanceof JidError;
        }
        return (
          normaliseLocalpart(out) === out &&
          !out.includes('/') &&
          !out.includes('\u0000') &&
          out !== '..' &&
          out !== '.'
        );
      }),
      { numRuns: 600 },
    );
  });

  it('domain normalisation is idempotent for arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 30 }), (input) => {
        let out: string;
        try {
          out = normaliseDomain(input);
        } catch (err) {
          return err instanceof JidError;
        }
        return normaliseDomain(out) === out;
      }),
      { numRuns: 600 },
    );
  });

  it('matches hosts against an allow-list after normalisation', () => {
    expect(hostAllowed('Example.COM.', ['example.com'])).toBe(true);
    expect(hostAllowed('example.com', ['EXAMPLE.com'])).toBe(true);
    expect(hostAllowed('bücher.example', ['BÜCHER.example'])).toBe(true);
    expect(hostAllowed('sub.example.com', ['example.com'])).toBe(false);
    expect(hostAllowed('example.com', [])).toBe(false);
    expect(hostAllowed('example.com', ['*'])).toBe(true);
    expect(hostAllowed('anything.test', ['other.test', '*'])).toBe(true);
    // An invalid host is refused even by `*`; an invalid entry matches nothing.
    expect(hostAllowed('exa mple.com', ['*'])).toBe(false);
    expect(hostAllowed('example.com', ['exa mple.com', 'example.com'])).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Rewriting

const FROM = 'Alice@Old.example';
const TO = 'bob@new.example';
const client = (name: string, attrs: Record<string, string> = {}, children: XmlElement['children'] = []) =>
  element(name, NS.client, attrs, children);

describe('rewriteRecord', () => {
  it('roster: only the self-contact jid changes; duplicates after the rewrite collapse', () => {
    const record: RosterRecord = {
      kind: 'roster',
      version: 'v1',
      items: [
        { jid: 'carol@example.com', name: 'alice@old.example', subscription: 'both', groups: ['alice@old.example'] },
        { jid: 'alice@old.example', name: 'Me', subscription: 'both', groups: ['Self'] },
        { jid: 'bob@new.example', subscription: 'to', groups: [] },
        { jid: 'alice@old.example.net', subscription: 'none', groups: [] },
      ],
    };
    const out = rewriteRecord(record, FROM, TO) as RosterRecord;
    expect(out).not.toBe(record);
    expect(out.version).toBe('v1');
    expect(out.items).toEqual([
      record.items[0],
      { jid: 'bob@new.example', name: 'Me', subscription: 'both', groups: ['Self'] },
      record.items[3],
    ]);
    expect(out.items[0]).toBe(record.items[0]);
    expect(record.items[1]?.jid).toBe('alice@old.example');
  });

  it('pending subscription: only a request from the old JID itself', () => {
    const self: PendingSubscriptionRecord = { kind: 'pending-subscription', from: 'alice@OLD.example', payload: [] };
    const other: PendingSubscriptionRecord = {
      kind: 'pending-subscription',
      from: 'carol@example.com',
      payload: [element('nick', 'http://jabber.org/protocol/nick', {}, ['alice@old.example'])],
    };
    expect(rewriteRecord(self, FROM, TO)).toEqual({ ...self, from: 'bob@new.example' });
    expect(rewriteRecord(other, FROM, TO)).toBe(other);
  });

  it('archive: from/to/jid/by anywhere in the stanza, and with; never text', () => {
    const forwarded = client('message', { from: 'alice@old.example/laptop', to: 'carol@example.com' }, [
      client('body', {}, ['mail alice@old.example']),
    ]);
    const stanza = client('message', { from: 'alice@old.example', to: 'alice@old.example/phone', type: 'chat' }, [
      client('body', {}, ['alice@old.example']),
      element('received', 'urn:xmpp:carbons:2', {}, [element('forwarded', NS.forward, {}, [forwarded])]),
      element('stanza-id', 'urn:xmpp:sid:0', { by: 'alice@old.example', id: 'x1' }),
      element('x', 'http://jabber.org/protocol/muc#user', {}, [
        element('item', 'http://jabber.org/protocol/muc#user', { jid: 'alice@old.example/res', nick: 'alice@old.example' }),
      ]),
      element('delay', NS.delay, { from: 'old.example', stamp: '2024-01-01T00:00:00Z' }),
    ]);
    const record: ArchiveRecord = {
      kind: 'archive',
      id: 'a1',
      timestamp: '2024-01-01T00:00:00Z',
      with: 'alice@old.example',
      stanza,
    };
    const out = rewriteRecord(record, FROM, TO) as ArchiveRecord;
    expect(out.with).toBe('bob@new.example');
    expect(out.id).toBe('a1');
    expect(out.stanza.attrs).toEqual({ from: 'bob@new.example', to: 'bob@new.example/phone', type: 'chat' });
    const [body, received, stanzaId, x, delay] = out.stanza.children as XmlElement[];
    expect(body).toBe(stanza.children[0]);
    const fwd = (received?.children[0] as XmlElement).children[0] as XmlElement;
    expect(fwd.attrs).toEqual({ from: 'bob@new.example/laptop', to: 'carol@example.com' });
    expect(fwd.children).toEqual(forwarded.children);
    expect(stanzaId?.attrs).toEqual({ by: 'bob@new.example', id: 'x1' });
    expect((x?.children[0] as XmlElement).attrs).toEqual({ jid: 'bob@new.example/res', nick: 'alice@old.example' });
    expect(delay).toBe(stanza.children[4]);
    // The input is untouched.
    expect(stanza.attrs.from).toBe('alice@old.example');
  });

  it('archive: a message with someone else is returned as is', () => {
    const record: ArchiveRecord = {
      kind: 'archive',
      id: 'a2',
      timestamp: '2024-01-01T00:00:00Z',
      with: 'carol@example.com',
      stanza: client('message', { from: 'carol@example.com/x', to: 'alice@old.example.org' }, [client('body', {}, ['hi'])]),
    };
    expect(rewriteRecord(record, FROM, TO)).toBe(record);
  });

  it('offline: stanza attributes, timestamp kept', () => {
    const record: OfflineRecord = {
      kind: 'offline',
      timestamp: '2024-02-02T00:00:00Z',
      stanza: client('message', { from: 'carol@example.com/x', to: 'alice@old.example' }, [
        element('delay', NS.delay, { from: 'old.example', stamp: '2024-02-02T00:00:00Z' }),
      ]),
    };
    const out = rewriteRecord(record, FROM, TO) as OfflineRecord;
    expect(out.timestamp).toBe(record.timestamp);
    expect(out.stanza.attrs).toEqual({ from: 'carol@example.com/x', to: 'bob@new.example' });
    expect(out.stanza.children[0]).toBe(record.stanza.children[0]);
  });

  it('PEP node: affiliation and subscription jids; config untouched', () => {
    const record: PepNodeRecord = {
      kind: 'pep-node',
      node: 'urn:xmpp:avatar:data',
      config: [{ var: 'pubsub#contact', values: ['alice@old.example'] }],
      affiliations: [
        { jid: 'alice@old.example', affiliation: 'owner' },
        { jid: 'carol@example.com', affiliation: 'member' },
      ],
      subscriptions: [
        { jid: 'alice@old.example/phone', subscription: 'subscribed', subid: 's1' },
        { jid: 'carol@example.com', subscription: 'subscribed' },
      ],
    };
    const out = rewriteRecord(record, FROM, TO) as PepNodeRecord;
    expect(out.config).toBe(record.config);
    expect(out.affiliations).toEqual([
      { jid: 'bob@new.example', affiliation: 'owner' },
      { jid: 'carol@example.com', affiliation: 'member' },
    ]);
    expect(out.affiliations[1]).toBe(record.affiliations[1]);
    expect(out.subscriptions).toEqual([
      { jid: 'bob@new.example/phone', subscription: 'subscribed', subid: 's1' },
      { jid: 'carol@example.com', subscription: 'subscribed' },
    ]);
  });

  it('PEP item: publisher and payload jid attributes only', () => {
    const payload = element('conference', 'storage:bookmarks', { jid: 'alice@old.example', name: 'alice@old.example' }, [
      element('nick', 'storage:bookmarks', {}, ['alice@old.example']),
    ]);
    const record: PepItemRecord = {
      kind: 'pep-item',
      node: 'storage:bookmarks',
      id: 'current',
      payload,
      publisher: 'alice@old.example/laptop',
      published: '2024-03-03T00:00:00Z',
    };
    const out = rewriteRecord(record, FROM, TO) as PepItemRecord;
    expect(out.publisher).toBe('bob@new.example/laptop');
    expect(out.published).toBe(record.published);
    expect(out.payload?.attrs).toEqual({ jid: 'bob@new.example', name: 'alice@old.example' });
    expect(out.payload?.children).toBe(payload.children);

    const empty: PepItemRecord = { kind: 'pep-item', node: 'n', id: 'i', payload: null };
    expect(rewriteRecord(empty, FROM, TO)).toBe(empty);
  });

  it('vCard: only a JABBERID that is exactly the old bare JID', () => {
    const vcard = element('vCard', NS.vcardTemp, {}, [
      element('FN', NS.vcardTemp, {}, ['alice@old.example']),
      element('JABBERID', NS.vcardTemp, {}, [' Alice@old.example ']),
      element('EMAIL', NS.vcardTemp, {}, [element('USERID', NS.vcardTemp, {}, ['alice@old.example'])]),
    ]);
    const record: VCardRecord = { kind: 'vcard', vcard };
    const out = rewriteRecord(record, FROM, TO) as VCardRecord;
    expect(out.vcard.children[0]).toBe(vcard.children[0]);
    expect(out.vcard.children[1]).toEqual(element('JABBERID', NS.vcardTemp, {}, ['bob@new.example']));
    expect(out.vcard.children[2]).toBe(vcard.children[2]);

    const fullJid: VCardRecord = {
      kind: 'vcard',
      vcard: element('vCard', NS.vcardTemp, {}, [element('JABBERID', NS.vcardTemp, {}, ['alice@old.example/res'])]),
    };
    expect(rewriteRecord(fullJid, FROM, TO)).toBe(fullJid);
  });

  it('blocklist: self-references only, without duplicates', () => {
    const record: BlocklistRecord = {
      kind: 'blocklist',
      items: ['spam.example', 'alice@old.example/res', 'old.example', 'alice@old.example', 'bob@new.example'],
    };
    const out = rewriteRecord(record, FROM, TO) as BlocklistRecord;
    expect(out.items).toEqual(['spam.example', 'bob@new.example/res', 'old.example', 'bob@new.example']);
  });

  it('privacy: jid-typed items only', () => {
    const record: PrivacyRecord = {
      kind: 'privacy',
      defaultList: 'main',
      lists: [
        {
          name: 'main',
          items: [
            { type: 'jid', value: 'alice@old.example', action: 'allow', order: 1, stanzas: [] },
            { type: 'group', value: 'alice@old.example', action: 'deny', order: 2, stanzas: ['message'] },
            { action: 'deny', order: 3, stanzas: [] },
          ],
        },
        { name: 'other', items: [{ type: 'jid', value: 'carol@example.com', action: 'deny', order: 1, stanzas: [] }] },
      ],
    };
    const out = rewriteRecord(record, FROM, TO) as PrivacyRecord;
    expect(out.defaultList).toBe('main');
    expect(out.lists[0]?.items[0]?.value).toBe('bob@new.example');
    expect(out.lists[0]?.items[1]).toBe(record.lists[0]?.items[1]);
    expect(out.lists[0]?.items[2]).toBe(record.lists[0]?.items[2]);
    expect(out.lists[1]).toBe(record.lists[1]);
  });

  it('private and opaque: any attribute equal to the old JID, never text', () => {
    const privateRecord: PrivateRecord = {
      kind: 'private',
      element: element('storage', 'storage:rosternotes', {}, [
        element('note', 'storage:rosternotes', { jid: 'alice@old.example', cdate: '2024' }, ['alice@old.example']),
        element('note', 'storage:rosternotes', { jid: 'carol@example.com' }),
      ]),
    };
    const outPrivate = rewriteRecord(privateRecord, FROM, TO) as PrivateRecord;
    const [note, other] = outPrivate.element.children as XmlElement[];
    expect(note?.attrs).toEqual({ jid: 'bob@new.example', cdate: '2024' });
    expect(note?.children).toEqual(['alice@old.example']);
    expect(other).toBe(privateRecord.element.children[1]);

    const opaque: OpaqueRecord = {
      kind: 'opaque',
      element: element('account', NS.prosodyExtended, { owner: 'alice@old.example/x', host: 'old.example' }),
    };
    expect((rewriteRecord(opaque, FROM, TO) as OpaqueRecord).element.attrs).toEqual({
      owner: 'bob@new.example/x',
      host: 'old.example',
    });
  });

  it('keeps the localpart when only the domain moves', () => {
    const record: PendingSubscriptionRecord = { kind: 'pending-subscription', from: 'alice@old.example', payload: [] };
    expect(rewriteRecord(record, 'alice@old.example', 'alice@new.example')).toEqual({ ...record, from: 'alice@new.example' });
  });

  it('is the identity when from and to normalise to the same JID', () => {
    const record: BlocklistRecord = { kind: 'blocklist', items: ['Alice@Old.example'] };
    expect(rewriteRecord(record, 'alice@old.example', 'ALICE@old.example.')).toBe(record);
  });

  it('rejects from/to that are not bare JIDs of an account', () => {
    const record: BlocklistRecord = { kind: 'blocklist', items: [] };
    expect(() => rewriteRecord(record, 'alice@old.example/res', TO)).toThrow(JidError);
    expect(() => rewriteRecord(record, FROM, 'new.example')).toThrow(JidError);
    expect(() => rewriteRecord(record, 'a@b@c', TO)).toThrow(JidError);
  });

  it('ignores attribute values that are not valid JIDs', () => {
    const record: OpaqueRecord = {
      kind: 'opaque',
      element: element('x', 'urn:example', { a: 'alice@old.example/\u0000', b: 'alice@@old.example', c: '' }),
    };
    expect(rewriteRecord(record, FROM, TO)).toBe(record);
  });
});

describe('rewriteRecords', () => {
  async function* source(records: readonly UserRecord[]): AsyncGenerator<UserRecord> {
    for (const record of records) yield record;
  }

  it('streams every record through the rewrite, in order', async () => {
    const untouched: BlocklistRecord = { kind: 'blocklist', items: ['spam.example'] };
    const input: UserRecord[] = [
      { kind: 'pending-subscription', from: 'alice@old.example', payload: [] },
      untouched,
      { kind: 'blocklist', items: ['alice@old.example/r'] },
    ];
    const out: UserRecord[] = [];
    for await (const record of rewriteRecords(source(input), FROM, TO)) out.push(record);
    expect(out).toEqual([
      { kind: 'pending-subscription', from: 'bob@new.example', payload: [] },
      untouched,
      { kind: 'blocklist', items: ['bob@new.example/r'] },
    ]);
    expect(out[1]).toBe(untouched);
  });

  it('fails on the first next() for an invalid target, before reading records', async () => {
    let read = false;
    async function* spy(): AsyncGenerator<UserRecord> {
      read = true;
      yield { kind: 'blocklist', items: [] };
    }
    await expect(rewriteRecords(spy(), FROM, 'not a jid').next()).rejects.toBeInstanceOf(JidError);
    expect(read).toBe(false);
  });

  it('a reusable rewriter gives the same results as rewriteRecord', () => {
    const rewrite = createRecordRewriter(FROM, TO);
    const record: BlocklistRecord = { kind: 'blocklist', items: ['alice@old.example', 'alice@old.example/a'] };
    expect(rewrite(record)).toEqual(rewriteRecord(record, FROM, TO));
    expect(rewrite(record)).toEqual({ kind: 'blocklist', items: ['bob@new.example', 'bob@new.example/a'] });
  });
});
