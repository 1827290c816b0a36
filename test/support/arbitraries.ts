/**
 * fast-check generators of valid XEP-0227 documents as event streams, in the canonical form the
 * reader produces (so that write → read must give them back unchanged).
 */
import { isValidJid, normaliseDomain, normaliseLocalpart } from '../../src/lib/jid.js';
import fc from 'fast-check';
import {
  NS,
  type ArchiveRecord,
  type DocumentEvent,
  type OfflineRecord,
  type PepItemRecord,
  type PepNodeRecord,
  type PrivacyRecord,
  type RosterRecord,
  type ScramCredentials,
  type UserRecord,
  type XmlElement,
  type XmlNode,
} from '../../src/records/model.js';

const XML_CHAR = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]$/u;

/** Characters that have broken XML writers before. */
const AWKWARD = [
  ']]>',
  '<',
  '>',
  '&',
  "'",
  '"',
  '&amp;',
  '\r',
  '\n',
  '\r\n',
  '\t',
  ' ',
  '\u00a0',
  '\u2028',
  '\u2029',
  '\u0085',
  '\uFEFF',
  '😀',
  '𝄞',
  '\u{10FFFD}',
  'é',
  'ß',
  '\uFFFD',
  '\u200D',
];

const char = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...AWKWARD) },
  { weight: 4, arbitrary: fc.constantFrom(...'abcxyz0123 .-_') },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 0x10ffff }).map((cp) => String.fromCodePoint(cp)).filter((c) => XML_CHAR.test(c)) },
);

/** Any text XML 1.0 can carry. */
export const xmlText = (maxLength = 12): fc.Arbitrary<string> => fc.string({ unit: char, maxLength });

const localName = fc.constantFrom('a', 'b', 'item', 'x-y', 'data', 'nick', 'café', 'ñ', 'q1', 'body2');
const payloadNs = fc.constantFrom('urn:example:a', 'urn:example:b', "urn:x:&'<>\"", 'http://example.org/ns#1', 'jabber:client', '');
const rootNs = fc.constantFrom('urn:example:a', 'urn:example:b', 'urn:example:c?d=e&f', 'storage:bookmarks');
const attrKey = fc.constantFrom('a', 'id', 'x-y', 'xml:lang', '{urn:example:attr}q', '{urn:example:other}q', `{${NS.prosodyExtended}}email`);
const attrs = fc.dictionary(attrKey, xmlText(), { maxKeys: 3 });

/** Children as the reader would build them: adjacent text merged, no empty text. */
function normalise(children: XmlNode[]): XmlNode[] {
  const out: XmlNode[] = [];
  for (const child of children) {
    if (typeof child === 'string') {
      if (child === '') continue;
      const last = out[out.length - 1];
      if (typeof last === 'string') out[out.length - 1] = last + child;
      else out.push(child);
    } else {
      out.push(child);
    }
  }
  return out;
}

const { tree } = fc.letrec<{ tree: XmlElement; node: XmlNode }>((tie) => ({
  tree: fc
    .record({
      name: localName,
      xmlns: payloadNs,
      attrs,
      children: fc.array(tie('node'), { maxLength: 3, depthIdentifier: 'tree' }),
    })
    .map((el) => ({ ...el, children: normalise(el.children) })),
  node: fc.oneof({ depthSize: 'small', depthIdentifier: 'tree', withCrossShrink: true }, xmlText(), tie('tree')),
}));

/** A payload element in a namespace of its own. */
export const payload = (name: fc.Arbitrary<string> = localName, ns: fc.Arbitrary<string> = rootNs): fc.Arbitrary<XmlElement> =>
  fc.record({ name, xmlns: ns, attrs, children: fc.array(fc.oneof(xmlText(), tree), { maxLength: 3 }) }).map((el) => ({
    ...el,
    children: normalise(el.children),
  }));

// Valid records hold normalised JIDs: only what src/jid.ts leaves unchanged is generated.
const localpart = fc.stringMatching(/^[a-z0-9._+%~ë-]{1,10}$/).filter((l) => isValidJid(`${l}@example.org`) && normaliseLocalpart(l) === l);
const domain = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,8}(\.[a-z]{2,5}){0,2}$/).filter((d) => isValidJid(d) && normaliseDomain(d) === d);
export const bareJid = fc.tuple(localpart, domain).map(([l, d]) => `${l}@${d}`);
const fullJid = fc.tuple(bareJid, xmlText(6)).map(([b, r]) => (r === '' ? b : `${b}/${r}`));

const two = (n: number): string => String(n).padStart(2, '0');
export const timestamp = fc
  .record({
    ms: fc.integer({ min: Date.UTC(1970, 0, 1), max: Date.UTC(2099, 11, 31) }),
    frac: fc.constantFrom('', '.1', '.123', '.123456', '.000'),
  })
  .map(({ ms, frac }) => {
    const d = new Date(ms);
    return `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())}T${two(d.getUTCHours())}:${two(
      d.getUTCMinutes(),
    )}:${two(d.getUTCSeconds())}${frac}Z`;
  });

const scram = (mechanism: 'SCRAM-SHA-1' | 'SCRAM-SHA-256'): fc.Arbitrary<ScramCredentials> => {
  const len = mechanism === 'SCRAM-SHA-1' ? 20 : 32;
  const b64 = (min: number, max: number): fc.Arbitrary<string> =>
    fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b).toString('base64'));
  return fc.record({
    mechanism: fc.constant(mechanism),
    iterationCount: fc.integer({ min: 1, max: 0x7fffffff }),
    salt: b64(1, 40),
    storedKey: b64(len, len),
    serverKey: b64(len, len),
  });
};

const roster: fc.Arbitrary<RosterRecord> = fc.record(
  {
    kind: fc.constant('roster' as const),
    version: xmlText(),
    items: fc.array(
      fc.record(
        {
          jid: bareJid,
          name: xmlText(),
          subscription: fc.constantFrom('none', 'to', 'from', 'both', 'remove'),
          ask: fc.constant('subscribe' as const),
          approved: fc.boolean(),
          groups: fc.array(xmlText(), { maxLength: 3 }),
        },
        { requiredKeys: ['jid', 'subscription', 'groups'] },
      ),
      { maxLength: 4 },
    ),
  },
  { requiredKeys: ['kind', 'items'] },
);

const message = fc
  .record({
    attrs: fc.record(
      { from: fullJid, to: fullJid, type: fc.constantFrom('chat', 'normal', 'groupchat'), id: xmlText(), 'xml:lang': fc.constantFrom('en', 'de') },
      { requiredKeys: [] },
    ),
    children: fc.array(fc.oneof(xmlText(), tree, payload(fc.constantFrom('body', 'subject', 'thread'), fc.constant(NS.client))), {
      maxLength: 4,
    }),
  })
  .map(({ attrs, children }): XmlElement => ({ name: 'message', xmlns: NS.client, attrs, children: normalise(children) }));

const archive: fc.Arbitrary<ArchiveRecord> = fc.record({
  kind: fc.constant('archive' as const),
  id: xmlText(),
  timestamp,
  with: bareJid,
  stanza: message,
});

/** Offline messages: the timestamp either rides in the stanza's <delay> or travels beside it. */
const offline: fc.Arbitrary<OfflineRecord> = fc
  .record({ stanza: message, stored: fc.option(timestamp, { nil: undefined }), delay: fc.option(timestamp, { nil: undefined }) })
  .map(({ stanza, stored, delay }) => {
    const withDelay =
      delay === undefined
        ? stanza
        : { ...stanza, children: [...stanza.children, { name: 'delay', xmlns: NS.delay, attrs: { stamp: delay }, children: ['Offline Storage'] }] };
    const ts = stored ?? delay;
    return { kind: 'offline', ...(ts === undefined ? {} : { timestamp: ts }), stanza: withDelay };
  });

const pepNode = (node: string): fc.Arbitrary<PepNodeRecord> =>
  fc.record({
    kind: fc.constant('pep-node' as const),
    node: fc.constant(node),
    config: fc.array(
      fc.record(
        {
          var: xmlText().filter((v) => v !== 'FORM_TYPE'),
          type: fc.constantFrom('text-single', 'boolean', 'list-multi', 'hidden'),
          values: fc.array(xmlText(), { maxLength: 3 }),
        },
        { requiredKeys: ['var', 'values'] },
      ),
      { maxLength: 4 },
    ),
    affiliations: fc.array(
      fc.record({ jid: xmlText(), affiliation: fc.constantFrom('owner', 'publisher', 'publish-only', 'member', 'none', 'outcast') }),
      { maxLength: 3 },
    ),
    subscriptions: fc.array(
      fc.record(
        { jid: xmlText(), subscription: fc.constantFrom('subscribed', 'pending', 'unconfigured', 'none'), subid: xmlText() },
        { requiredKeys: ['jid', 'subscription'] },
      ),
      { maxLength: 3 },
    ),
  });

const pepItem: fc.Arbitrary<PepItemRecord> = fc.record(
  {
    kind: fc.constant('pep-item' as const),
    node: fc.constantFrom('urn:xmpp:bookmarks:1', 'urn:xmpp:avatar:data', "odd <node> & 'name'"),
    id: xmlText(),
    payload: fc.option(payload(), { nil: null }),
    publisher: xmlText(),
    published: timestamp,
  },
  { requiredKeys: ['kind', 'node', 'id', 'payload'] },
);

const privacy: fc.Arbitrary<PrivacyRecord> = fc.record(
  {
    kind: fc.constant('privacy' as const),
    defaultList: xmlText(),
    lists: fc.array(
      fc.record({
        name: xmlText(),
        items: fc.array(
          fc.record(
            {
              type: fc.constantFrom('jid', 'group', 'subscription'),
              value: xmlText(),
              action: fc.constantFrom('allow', 'deny'),
              order: fc.nat({ max: 1_000_000 }),
              stanzas: fc.subarray(['message', 'iq', 'presence-in', 'presence-out'] as const),
            },
            { requiredKeys: ['action', 'order', 'stanzas'] },
          ),
          { maxLength: 3 },
        ),
      }),
      { maxLength: 3 },
    ),
  },
  { requiredKeys: ['kind', 'lists'] },
);

const simpleRecord: fc.Arbitrary<UserRecord> = fc.oneof(
  roster,
  fc.record({ kind: fc.constant('pending-subscription' as const), from: bareJid, payload: fc.array(payload(), { maxLength: 2 }) }),
  payload(fc.constant('vCard'), fc.constant(NS.vcardTemp)).map((vcard) => ({ kind: 'vcard' as const, vcard })),
  payload().map((el) => ({ kind: 'private' as const, element: el })),
  pepItem,
  archive,
  offline,
  fc.record({ kind: fc.constant('blocklist' as const), items: fc.array(xmlText(), { maxLength: 3 }) }),
  privacy,
  payload(localName, fc.constantFrom('urn:example:opaque', 'urn:example:server-specific')).map((el) => ({
    kind: 'opaque' as const,
    element: el,
  })),
);

/** A user's records, each kind possible several times and in any order; PEP node names unique. */
const records: fc.Arbitrary<UserRecord[]> = fc
  .tuple(
    fc.array(fc.oneof({ weight: 6, arbitrary: simpleRecord }, { weight: 1, arbitrary: fc.constant('pep-node' as const) }), { maxLength: 10 }),
    fc.uniqueArray(xmlText(), { minLength: 10, maxLength: 10 }),
  )
  .chain(([picks, nodeNames]) =>
    fc.tuple(...picks.map((p, i) => (p === 'pep-node' ? pepNode(nodeNames[i] ?? `n${i}`) : fc.constant(p)))),
  );

const user = fc.record(
  {
    password: xmlText(),
    scram: fc.subarray(['SCRAM-SHA-1', 'SCRAM-SHA-256'] as const).chain((mechs) => fc.tuple(...mechs.map(scram))),
    extraAttributes: fc.dictionary(
      fc.constantFrom(`{${NS.prosodyExtended}}email`, `{${NS.prosodyExtended}}name`, 'created', 'xml:lang', '{urn:example:x}y'),
      xmlText(),
      { maxKeys: 3 },
    ),
    records,
  },
  { requiredKeys: ['scram', 'extraAttributes', 'records'] },
);

/** 1–3 hosts with 1–3 users each, as the flat event stream the reader yields. */
export const documentEvents: fc.Arbitrary<DocumentEvent[]> = fc
  .uniqueArray(domain, { minLength: 1, maxLength: 3 })
  .chain((hosts) =>
    fc.tuple(
      ...hosts.map((jid) =>
        fc
          .tuple(fc.uniqueArray(localpart, { minLength: 1, maxLength: 3 }), fc.array(user, { minLength: 3, maxLength: 3 }))
          .map(([names, users]) => {
            const events: DocumentEvent[] = [{ kind: 'host', jid }];
            names.forEach((name, i) => {
              const u = users[i];
              if (!u) return;
              events.push({
                kind: 'user',
                name,
                ...(u.password === undefined ? {} : { password: u.password }),
                scram: u.scram,
                extraAttributes: u.extraAttributes,
              });
              events.push(...u.records, { kind: 'user-end' });
            });
            events.push({ kind: 'host-end' });
            return events;
          }),
      ),
    ),
  )
  .map((hosts) => hosts.flat());
