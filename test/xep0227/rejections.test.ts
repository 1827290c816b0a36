/**
 * Every class of document the reader refuses, each with its code and the position it reports:
 * the `<` of the offending element (or `&` of an entity, first byte of bad UTF-8), 1-based.
 */
import { describe, expect, it } from 'vitest';
import { Xep0227Error } from '../../src/xep0227/errors.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { collect, expectRejection, positionOf, readError } from '../support/xep0227.js';

const DECL = "<?xml version='1.0' encoding='UTF-8'?>\n";
const ROOT = "<server-data xmlns='urn:xmpp:pie:0'>\n";
/** A document around one user's children, one element per line. */
const inUser = (...lines: string[]): string =>
  `${DECL}${ROOT}<host jid='capulet.example'>\n<user name='juliet'>\n${lines.join('\n')}\n</user>\n</host>\n</server-data>\n`;

async function rejectsAt(doc: string, code: Xep0227Error['code'], needle: string, options?: Parameters<typeof readDocument>[1]): Promise<Xep0227Error> {
  const at = positionOf(doc, needle);
  return expectRejection(doc, code, at.line, at.column, options);
}

describe('status codes for the HTTP layer', () => {
  it('maps syntax to 400, size to 413, the rest to 422', () => {
    expect(new Xep0227Error('malformed', 'x', 1, 1).status).toBe(400);
    expect(new Xep0227Error('doctype', 'x', 1, 1).status).toBe(400);
    expect(new Xep0227Error('entity', 'x', 1, 1).status).toBe(400);
    expect(new Xep0227Error('document-too-large', 'x', 1, 1).status).toBe(413);
    expect(new Xep0227Error('element-too-large', 'x', 1, 1).status).toBe(413);
    for (const code of ['wrong-root', 'wrong-namespace', 'missing-attribute', 'invalid-jid', 'duplicate-user', 'too-deep', 'invalid-value', 'xinclude'] as const) {
      expect(new Xep0227Error(code, 'x', 1, 1).status).toBe(422);
    }
    const err = new Xep0227Error('invalid-jid', 'bad JID', 3, 7, 'host.xml');
    expect(err.message).toBe('bad JID (host.xml, line 3, column 7)');
    expect(err.detail).toBe('bad JID');
  });
});

describe('malformed', () => {
  it('mismatched tags, reported where saxes notices', async () => {
    await expectRejection(`${DECL}${ROOT}<host jid='a.example'>\n</server-data>`, 'malformed', 4, 14);
  });

  it('a document that ends early', async () => {
    await expectRejection(`${DECL}${ROOT}<host jid='a.example'>\n`, 'malformed', 4, 1);
  });

  it('an empty document', async () => {
    await expectRejection('', 'malformed', 1, 1);
  });

  it('text after the root', async () => {
    await expectRejection(`${DECL}${ROOT}</server-data>\ntrailing`, 'malformed', 4, 8);
  });

  it('bytes that are not UTF-8, at the offending byte, also when split across chunks', async () => {
    const head = `${DECL}${ROOT}<host jid='é`;
    const doc = Buffer.concat([Buffer.from(head), Buffer.from([0xff]), Buffer.from("'/></server-data>")]);
    await expectRejection(doc, 'malformed', 3, 13);
    const split = [Buffer.from(`${DECL}${ROOT}<host jid='`), Buffer.from([0xc3]), Buffer.from([0x28, 0x27, 0x2f, 0x3e])];
    await expectRejection(split, 'malformed', 3, 12);
    // A sequence cut off by the end of the document.
    await expectRejection([Buffer.concat([Buffer.from(`${DECL}${ROOT}</server-data>`), Buffer.from([0xe2, 0x82])])], 'malformed', 3, 15);
  });

  it('an encoding other than UTF-8', async () => {
    await expectRejection("<?xml version='1.0' encoding='ISO-8859-1'?><server-data xmlns='urn:xmpp:pie:0'/>", 'malformed', 1, 1);
  });

  it('an unbound prefix', async () => {
    const doc = `${DECL}${ROOT}<x:host jid='a'/></server-data>`;
    const err = await readError(doc);
    expect([err.code, err.line]).toEqual(['malformed', 3]);
  });
});

describe('doctype', () => {
  it('refuses any DOCTYPE, pointing at its start', async () => {
    await expectRejection(`${DECL}<!DOCTYPE server-data [\n<!ENTITY x 'y'>\n]>\n${ROOT}</server-data>`, 'doctype', 2, 1);
    await expectRejection(`${DECL}  <!DOCTYPE server-data>${ROOT}</server-data>`, 'doctype', 2, 3);
  });

  it('refuses billion laughs before expanding anything', async () => {
    const lol = `${DECL}<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n${ROOT}<host jid='&lol2;'/></server-data>`;
    await expectRejection(lol, 'doctype', 2, 1);
  });
});

describe('entity', () => {
  it('refuses entity references other than the predefined five, at the &', async () => {
    await rejectsAt(inUser("<vCard xmlns='vcard-temp'><FN>caf&eacute;</FN></vCard>"), 'entity', '&eacute;');
    await rejectsAt(`${DECL}${ROOT}<host jid='a&x;b'/></server-data>`, 'entity', '&x;');
  });

  it('refuses character references to characters XML cannot carry', async () => {
    await rejectsAt(inUser("<vCard xmlns='vcard-temp'><FN>a&#0;</FN></vCard>"), 'entity', '&#0;');
  });

  it('accepts the predefined entities and character references', async () => {
    const events = await collect(
      readDocument([inUser("<vCard xmlns='vcard-temp'><FN>&lt;&gt;&amp;&apos;&quot;&#x1F600;&#233;</FN></vCard>")]),
    );
    expect(JSON.stringify(events[2])).toContain('<>&\'\\"😀é');
  });
});

describe('structure', () => {
  it('wrong root element', async () => {
    await expectRejection(`${DECL}<host xmlns='urn:xmpp:pie:0' jid='a'/>`, 'wrong-root', 2, 1);
    await expectRejection("<users xmlns='urn:xmpp:pie:0'/>", 'wrong-root', 1, 1);
  });

  it('wrong root namespace', async () => {
    await expectRejection(`${DECL}<server-data xmlns='urn:example:other'/>`, 'wrong-namespace', 2, 1);
    await expectRejection(`${DECL}  <server-data/>`, 'wrong-namespace', 2, 3);
  });

  it('host without jid, user without name', async () => {
    await rejectsAt(`${DECL}${ROOT}<host>\n</host>\n</server-data>`, 'missing-attribute', '<host>');
    await rejectsAt(`${DECL}${ROOT}<host jid='a.example'>\n  <user password='x'/>\n</host>\n</server-data>`, 'missing-attribute', '<user');
  });

  it('missing attributes inside records, at the element that lacks them', async () => {
    const roster = inUser("<query xmlns='jabber:iq:roster'>", "  <item jid='a@b.example'/>", "  <item name='no jid'/>", '</query>');
    await rejectsAt(roster, 'missing-attribute', "<item name='no jid'");
    const privacy = inUser("<query xmlns='jabber:iq:privacy'><list name='l'><item order='1'/></list></query>");
    await rejectsAt(privacy, 'missing-attribute', "<item order='1'");
    await rejectsAt(inUser("<pubsub xmlns='http://jabber.org/protocol/pubsub'>", '<items>', '</items></pubsub>'), 'missing-attribute', '<items>');
    await rejectsAt(inUser("<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'>", '<item/></items></pubsub>'), 'missing-attribute', '<item/>');
    await rejectsAt(inUser("<archive xmlns='urn:xmpp:pie:0#mam'>", "<result xmlns='urn:xmpp:mam:2'/>", '</archive>'), 'missing-attribute', '<result');
    await rejectsAt(inUser("<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>", "<affiliations node='n'><affiliation jid='a@b'/></affiliations></pubsub>"), 'missing-attribute', '<affiliation ');
  });

  it('invalid JIDs: host, user name, roster item, pending subscription', async () => {
    await rejectsAt(`${DECL}${ROOT}<host jid='bad host'/>\n</server-data>`, 'invalid-jid', '<host');
    await rejectsAt(`${DECL}${ROOT}<host jid='juliet@capulet.example'/>\n</server-data>`, 'invalid-jid', '<host');
    await rejectsAt(`${DECL}${ROOT}<host jid='a.example'>\n<user name='ju liet'/>\n</host>\n</server-data>`, 'invalid-jid', '<user');
    await rejectsAt(`${DECL}${ROOT}<host jid='a.example'>\n<user name='ju@liet'/>\n</host>\n</server-data>`, 'invalid-jid', '<user');
    await rejectsAt(`${DECL}${ROOT}<host jid='a.example'>\n<user name=''/>\n</host>\n</server-data>`, 'invalid-jid', '<user');
    await rejectsAt(inUser("<query xmlns='jabber:iq:roster'>", "<item jid='romeo@'/>", '</query>'), 'invalid-jid', "<item jid='romeo@'");
    await rejectsAt(inUser("<query xmlns='jabber:iq:roster'>", "<item jid='romeo@montague.example/orchard'/>", '</query>'), 'invalid-jid', '<item');
    await rejectsAt(inUser("<query xmlns='jabber:iq:roster'><item jid='r&lt;o@x'/></query>"), 'invalid-jid', '<item');
    await rejectsAt(inUser("<presence xmlns='jabber:client' type='subscribe' from='@montague.example'/>"), 'invalid-jid', '<presence');
  });

  it('duplicate users in one host, also across host elements', async () => {
    const doc = `${DECL}${ROOT}<host jid='a.example'>\n<user name='alice'/>\n<user name='bob'/>\n<user name='alice'/>\n</host>\n</server-data>`;
    await rejectsAt(doc, 'duplicate-user', "<user name='alice'/>\n</host>");
    const twice = `${DECL}${ROOT}<host jid='a.example'><user name='alice'/></host>\n<host jid='A.example'><user name='alice'/></host>\n</server-data>`;
    await rejectsAt(twice, 'duplicate-user', "<user name='alice'/></host>\n</server-data>");
    // The same name in another host is another account.
    await collect(readDocument([`${ROOT}<host jid='a.example'><user name='alice'/></host><host jid='b.example'><user name='alice'/></host></server-data>`]));
  });

  it('elements nested deeper than maxDepth', async () => {
    const doc = inUser("<vCard xmlns='vcard-temp'><a><b><c/></b></a></vCard>");
    await rejectsAt(doc, 'too-deep', '<c/>', { maxDepth: 6 });
    await collect(readDocument([doc], { maxDepth: 7 }));
    const deep = `${ROOT}<host jid='a.example'><user name='u'><vCard xmlns='vcard-temp'>${'<x>'.repeat(100)}${'</x>'.repeat(100)}</vCard></user></host></server-data>`;
    // Depth 65 is the 61st <x>.
    const at = positionOf(deep, '<x>');
    await expectRejection(deep, 'too-deep', at.line, at.column + 60 * 3);
  });
});

describe('sizes', () => {
  const photo = 'A'.repeat(3000);
  const vcardDoc = inUser('<roster-ok/>', `<vCard xmlns='vcard-temp'><PHOTO><BINVAL>${photo}</BINVAL></PHOTO></vCard>`);

  it('a record subtree over maxElementBytes, at its start, however the bytes arrive', async () => {
    await rejectsAt(vcardDoc, 'element-too-large', '<vCard', { maxElementBytes: 1000 });
    const chunks: string[] = [];
    for (let i = 0; i < vcardDoc.length; i += 97) chunks.push(vcardDoc.slice(i, i + 97));
    const at = positionOf(vcardDoc, '<vCard');
    await expectRejection(chunks, 'element-too-large', at.line, at.column, { maxElementBytes: 1000 });
    await collect(readDocument([vcardDoc], { maxElementBytes: 4000 }));
  });

  it('a record subtree with more elements than maxElementNodes, at its start', async () => {
    const many = (n: number): string => inUser(`<query xmlns='jabber:iq:private'><storage xmlns='urn:example:bomb'>${'<a/>'.repeat(n)}</storage></query>`);
    await rejectsAt(many(10), 'too-many-nodes', '<storage', { maxElementNodes: 10 });
    // The record's own element counts: 1 + 9 children is within a limit of 10.
    await collect(readDocument([many(9)], { maxElementNodes: 10 }));
    const chunks: string[] = [];
    const doc = many(50);
    for (let i = 0; i < doc.length; i += 7) chunks.push(doc.slice(i, i + 7));
    const at = positionOf(doc, '<storage');
    const err = await expectRejection(chunks, 'too-many-nodes', at.line, at.column, { maxElementNodes: 20 });
    expect(err.status).toBe(413);
  });

  it('counts the elements of archive items the fast path would take', async () => {
    const item = (n: number): string =>
      `<result xmlns='urn:xmpp:mam:2' id='m1'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/>` +
      `<message xmlns='jabber:client' from='a@a.example/r' to='b@b.example' type='chat'><body>hi</body>${'<x/>'.repeat(n)}</message></forwarded></result>`;
    const doc = (n: number): string => inUser(`<archive xmlns='urn:xmpp:pie:0#mam'>${item(n)}</archive>`);
    await rejectsAt(doc(100), 'too-many-nodes', '<result', { maxElementNodes: 50 });
    await collect(readDocument([doc(10)], { maxElementNodes: 50 }));
  });

  it('counts bytes, not characters', async () => {
    const doc = inUser(`<vCard xmlns='vcard-temp'><FN>${'é'.repeat(400)}</FN></vCard>`);
    await collect(readDocument([doc], { maxElementBytes: 900 }));
    await rejectsAt(doc, 'element-too-large', '<vCard', { maxElementBytes: 800 });
    await rejectsAt(doc, 'element-too-large', '<vCard', { maxElementBytes: 600 });
  });

  it('bounds what saxes buffers outside records too (a huge text in an ignored element)', async () => {
    const doc = `${ROOT}<host jid='a.example'><ignored xmlns='urn:example:x'>${'x'.repeat(5000)}</ignored></host></server-data>`;
    const chunks: string[] = [];
    for (let i = 0; i < doc.length; i += 500) chunks.push(doc.slice(i, i + 500));
    const err = await readError(chunks, { maxElementBytes: 2000 });
    expect(err.code).toBe('element-too-large');
    await collect(readDocument(chunks, { maxElementBytes: 6000 }));
  });

  it('a document over maxDocumentBytes, where the reader had got to', async () => {
    const doc = inUser("<vCard xmlns='vcard-temp'/>");
    await expectRejection(doc, 'document-too-large', 1, 1, { maxDocumentBytes: 100 });
    const firstLine = DECL;
    const err = await expectRejection([firstLine, ROOT, doc.slice(DECL.length + ROOT.length)], 'document-too-large', 2, 1, {
      maxDocumentBytes: DECL.length + 10,
    });
    expect(err.status).toBe(413);
    await collect(readDocument([doc], { maxDocumentBytes: Buffer.byteLength(doc) }));
  });
});

describe('invalid values', () => {
  const scram = (mech: string, iter: string, serverKey: string, storedKey = 'Q6qT/SbybblGCZz8e8eSfCJOQic='): string =>
    `<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='${mech}'>\n<iter-count>${iter}</iter-count><salt>c2FsdA==</salt>\n<server-key>${serverKey}</server-key>\n<stored-key>${storedKey}</stored-key></scram-credentials>`;

  it('SCRAM keys of no SCRAM length, or of two lengths', async () => {
    await rejectsAt(inUser(scram('SCRAM-SHA-1', '4096', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAA')), 'invalid-value', '<server-key>');
    await rejectsAt(inUser(scram('SCRAM-SHA-1', '4096', '0pXWGK0GZJ6TR73AIUN3ITYtA1g=', 'c2hvcnQ=')), 'invalid-value', '<stored-key>');
  });

  it('SCRAM keys whose length contradicts the label: labelled by length, with a warning', async () => {
    const events = await collect(readDocument([inUser(scram('SCRAM-SHA-256', '4096', '0pXWGK0GZJ6TR73AIUN3ITYtA1g='))]));
    const user = events.find((e) => e.kind === 'user');
    expect(user?.kind === 'user' ? user.scram.map((s) => s.mechanism) : []).toEqual(['SCRAM-SHA-1']);
    expect(user?.kind === 'user' ? user.warnings : []).toEqual(['credentials labelled SCRAM-SHA-256 have 20-byte keys: imported as SCRAM-SHA-1']);
  });

  it('credentials are not read at all when not imported', async () => {
    const events = await collect(readDocument([inUser(scram('SCRAM-SHA-1', '4096', 'not base64!'))], { credentials: false }));
    const user = events.find((e) => e.kind === 'user');
    expect(user?.kind === 'user' ? user.scram : undefined).toEqual([]);
  });

  it('SCRAM values that are not base64, and bad iteration counts', async () => {
    await rejectsAt(inUser(scram('SCRAM-SHA-1', '4096', 'not base64!')), 'invalid-value', '<server-key>');
    await rejectsAt(inUser(scram('SCRAM-SHA-1', '0', '0pXWGK0GZJ6TR73AIUN3ITYtA1g=')), 'invalid-value', '<iter-count>');
    await rejectsAt(inUser(scram('SCRAM-SHA-1', '04096', '0pXWGK0GZJ6TR73AIUN3ITYtA1g=')), 'invalid-value', '<iter-count>');
    await rejectsAt(
      inUser("<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>1</iter-count></scram-credentials>"),
      'invalid-value',
      '<scram-credentials',
    );
  });

  it('a second set for the same mechanism, or credentials after the data', async () => {
    const one = scram('SCRAM-SHA-1', '4096', '0pXWGK0GZJ6TR73AIUN3ITYtA1g=');
    const doc = inUser(one, one.replace('<scram-credentials ', '<scram-credentials  '));
    await rejectsAt(doc, 'invalid-value', '<scram-credentials  ');
    await rejectsAt(inUser("<vCard xmlns='vcard-temp'/>", one), 'invalid-value', '<scram-credentials');
  });

  it('unknown enumerated values', async () => {
    await rejectsAt(inUser("<query xmlns='jabber:iq:roster'><item jid='a@b' subscription='sometimes'/></query>"), 'invalid-value', '<item');
    await rejectsAt(inUser("<query xmlns='jabber:iq:roster'><item jid='a@b' ask='unsubscribe'/></query>"), 'invalid-value', '<item');
    await rejectsAt(inUser("<query xmlns='jabber:iq:roster'><item jid='a@b' approved='maybe'/></query>"), 'invalid-value', '<item');
    await rejectsAt(
      inUser("<query xmlns='jabber:iq:privacy'><list name='l'><item action='block' order='1'/></list></query>"),
      'invalid-value',
      '<item',
    );
    await rejectsAt(
      inUser("<query xmlns='jabber:iq:privacy'><list name='l'><item action='deny' order='-1'/></list></query>"),
      'invalid-value',
      '<item',
    );
    await rejectsAt(
      inUser("<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><subscriptions node='n'><subscription jid='a@b' subscription='yes'/></subscriptions></pubsub>"),
      'invalid-value',
      '<subscription ',
    );
  });

  it('archived messages without a usable time or message', async () => {
    const result = (inner: string): string =>
      inUser("<archive xmlns='urn:xmpp:pie:0#mam'>", `<result xmlns='urn:xmpp:mam:2' id='1'><forwarded xmlns='urn:xmpp:forward:0'>${inner}</forwarded></result>`, '</archive>');
    await rejectsAt(result("<delay xmlns='urn:xmpp:delay' stamp='yesterday'/><message xmlns='jabber:client'/>"), 'invalid-value', '<delay');
    await rejectsAt(result("<delay xmlns='urn:xmpp:delay' stamp='2020-13-01T00:00:00Z'/><message xmlns='jabber:client'/>"), 'invalid-value', '<delay');
    await rejectsAt(result("<message xmlns='jabber:client'/>"), 'invalid-value', '<forwarded');
    await rejectsAt(result("<delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/>"), 'invalid-value', '<forwarded');
    await rejectsAt(result("<delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/><message xmlns='urn:example:x'/>"), 'invalid-value', '<message');
  });

  it('PEP items with two payloads', async () => {
    await rejectsAt(
      inUser("<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'>", "<item id='1'><a xmlns='urn:a'/><b xmlns='urn:b'/></item></items></pubsub>"),
      'invalid-value',
      "<item id='1'>",
    );
  });
});

describe('errors keep the events before them', () => {
  it('yields the records before the problem, then throws', async () => {
    const doc = inUser("<vCard xmlns='vcard-temp'/>", "<query xmlns='jabber:iq:roster'><item/></query>");
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const event of readDocument([doc])) seen.push(event.kind);
      })(),
    ).rejects.toMatchObject({ code: 'missing-attribute' });
    expect(seen).toEqual(['host', 'user', 'vcard']);
  });
});
