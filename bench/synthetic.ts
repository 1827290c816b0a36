/**
 * A synthetic but realistic account for the benchmark: 500 roster items in groups, a vCard with
 * a 40 KB photo, 20 PEP nodes with items, and N archived messages with ids, bodies of varied
 * length and script, some carrying OMEMO-like encrypted payloads. Generated lazily, so a
 * million messages never sit in memory.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { NS, element, type DocumentEvent, type ScramCredentials, type XmlElement } from '../src/records/model.js';

export const BENCH_HOST = 'localhost';
export const BENCH_USER = 'bench';
export const BENCH_PASSWORD = 'bench password 🔑';

const BODIES = [
  'ok',
  'See you tomorrow at the station, platform 4.',
  'Grüße aus München! Das Wetter ist großartig ☀️',
  'Привет! Как дела? Давно не виделись.',
  '今日は会議がありますか？資料を送ります。',
  'مرحبا، هل وصلت الرسالة؟',
  'The quick brown fox jumps over the lazy dog. '.repeat(6),
  'a < b && c > d — "quotes" and \'apostrophes\' 🎉👍🏽',
];

function scram(password: string): ScramCredentials {
  const salt = Buffer.from('6cf4cfa7-482c-4c64-9e96-7b6ffb6491eb', 'utf8');
  const salted = pbkdf2Sync(password, salt, 10000, 20, 'sha1');
  const clientKey = createHmac('sha1', salted).update('Client Key').digest();
  return {
    mechanism: 'SCRAM-SHA-1',
    iterationCount: 10000,
    salt: salt.toString('base64'),
    storedKey: createHash('sha1').update(clientKey).digest('base64'),
    serverKey: createHmac('sha1', salted).update('Server Key').digest('base64'),
  };
}

function message(i: number, me: string): XmlElement {
  const peer = `contact${i % 500}@example.net`;
  const outgoing = i % 2 === 0;
  const children: XmlElement[] = [];
  if (i % 7 === 3) {
    // OMEMO (XEP-0384, siacs namespace) as Conversations sends it: opaque base64 blobs.
    const blob = (n: number): string => Buffer.from(createHash('sha256').update(`${i}:${n}`).digest()).toString('base64');
    children.push(
      element('encrypted', 'eu.siacs.conversations.axolotl', {}, [
        element('header', 'eu.siacs.conversations.axolotl', { sid: String(1000 + (i % 97)) }, [
          element('key', 'eu.siacs.conversations.axolotl', { rid: String(2000 + (i % 13)) }, [blob(1) + blob(2)]),
          element('iv', 'eu.siacs.conversations.axolotl', {}, [blob(3).slice(0, 16)]),
        ]),
        element('payload', 'eu.siacs.conversations.axolotl', {}, [blob(4) + blob(5)]),
      ]),
      element('body', NS.client, {}, ['I sent you an OMEMO encrypted message but your client doesn’t seem to support that.']),
    );
  } else {
    children.push(element('body', NS.client, {}, [`${BODIES[i % BODIES.length]} #${i}`]));
  }
  children.push(element('origin-id', 'urn:xmpp:sid:0', { id: `origin-${i.toString(36)}` }));
  return element(
    'message',
    NS.client,
    outgoing ? { 'xml:lang': 'en', from: `${me}/phone`, to: peer, type: 'chat', id: `m-${i}` } : { 'xml:lang': 'en', from: `${peer}/laptop`, to: me, type: 'chat', id: `m-${i}` },
    children,
  );
}

/** 32 pseudo-random bits from a counter (splitmix32's mixing): the same ids on every run. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * A version 4 UUID, as Prosody's mod_mam gives each archived message (util.uuid): the ids are in
 * no order, so each one lands at a random place in the archive's unique index, as in a real store.
 */
function archiveId(i: number): string {
  const hex = [1, 2, 3, 4].map((k) => mix32(i * 4 + k + 0x9e3779b9).toString(16).padStart(8, '0')).join('');
  const variant = ((parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export async function* syntheticAccount(messages: number): AsyncGenerator<DocumentEvent> {
  const me = `${BENCH_USER}@${BENCH_HOST}`;
  yield { kind: 'host', jid: BENCH_HOST };
  yield { kind: 'user', name: BENCH_USER, scram: [scram(BENCH_PASSWORD)], extraAttributes: {} };
  yield {
    kind: 'roster',
    version: '42',
    items: Array.from({ length: 500 }, (_, i) => ({
      jid: `contact${i}@example.net`,
      ...(i % 3 ? { name: `Contact ${i} ${BODIES[i % BODIES.length]?.slice(0, 12)}` } : {}),
      subscription: (['both', 'to', 'from', 'none'] as const)[i % 4] ?? 'both',
      groups: i % 5 === 0 ? [] : [`Group ${i % 17}`, ...(i % 11 === 0 ? ['Work'] : [])],
    })),
  };
  const photo = randomBytes(30 * 1024).toString('base64'); // 40 KB once base64-encoded
  yield {
    kind: 'vcard',
    vcard: element('vCard', NS.vcardTemp, {}, [
      element('FN', NS.vcardTemp, {}, ['Bench Mark']),
      element('NICKNAME', NS.vcardTemp, {}, ['bench']),
      element('PHOTO', NS.vcardTemp, {}, [element('TYPE', NS.vcardTemp, {}, ['image/jpeg']), element('BINVAL', NS.vcardTemp, {}, [photo])]),
    ]),
  };
  for (let n = 0; n < 20; n++) {
    const node = n === 0 ? 'urn:xmpp:bookmarks:1' : `urn:example:bench:node${n}`;
    yield {
      kind: 'pep-node',
      node,
      config: [
        { var: 'pubsub#access_model', values: [n % 2 ? 'presence' : 'whitelist'] },
        { var: 'pubsub#max_items', values: ['max'] },
        { var: 'pubsub#persist_items', values: ['1'] },
      ],
      affiliations: [{ jid: me, affiliation: 'owner' }],
      subscriptions: [],
    };
    for (let i = 0; i < 1 + (n % 5); i++) {
      yield {
        kind: 'pep-item',
        node,
        id: n === 0 ? `room${i}@conference.example.org` : `item-${i}`,
        payload:
          n === 0
            ? element('conference', 'urn:xmpp:bookmarks:1', { name: `Room ${i}`, autojoin: 'true' }, [element('nick', 'urn:xmpp:bookmarks:1', {}, ['bench'])])
            : element('note', `urn:example:bench:node${n}`, { n: String(i) }, [BODIES[(n + i) % BODIES.length] ?? '']),
        publisher: me,
        published: '2026-01-01T00:00:00Z',
      };
    }
  }
  const start = Date.UTC(2024, 0, 1) / 1000;
  for (let i = 0; i < messages; i++) {
    yield {
      kind: 'archive',
      id: archiveId(i),
      timestamp: new Date((start + i * 7) * 1000).toISOString().replace('.000Z', 'Z'),
      stanza: message(i, me),
    };
  }
  yield { kind: 'blocklist', items: ['spammer@spam.example', 'troll@example.net'] };
  yield { kind: 'user-end' };
  yield { kind: 'host-end' };
}
