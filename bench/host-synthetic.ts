/**
 * A synthetic host of many small accounts, as a provider's is: each account has SCRAM
 * credentials, 2 contacts, a small vCard, PEP bookmarks with one room, 3 archived messages and 1
 * offline message. Generated lazily, so a host of any size never sits in memory; the same
 * document on every run.
 */
import { createHash } from 'node:crypto';
import { NS, element, type DocumentEvent, type ScramCredentials, type XmlElement } from '../src/records/model.js';
import { BENCH_HOST } from './synthetic.js';

/** One fixed credential for every account: deriving a key per account would time the generator. */
const CREDENTIALS: ScramCredentials = {
  mechanism: 'SCRAM-SHA-1',
  iterationCount: 4096,
  salt: Buffer.from('host-bench-salt').toString('base64'),
  storedKey: createHash('sha1').update('stored').digest('base64'),
  serverKey: createHash('sha1').update('server').digest('base64'),
};

/** The account names of a host of `accounts`, in document order. */
export function hostUserName(index: number): string {
  return `user${index.toString().padStart(7, '0')}`;
}

function chat(from: string, to: string, id: string, body: string): XmlElement {
  return element('message', NS.client, { from, to, type: 'chat', id }, [element('body', NS.client, {}, [body])]);
}

export async function* syntheticHost(accounts: number, host = BENCH_HOST): AsyncGenerator<DocumentEvent> {
  yield { kind: 'host', jid: host };
  for (let a = 0; a < accounts; a++) {
    const name = hostUserName(a);
    const me = `${name}@${host}`;
    const friends = [hostUserName((a + 1) % accounts), hostUserName((a + 7) % accounts)].map((u) => `${u}@${host}`);
    yield { kind: 'user', name, scram: [CREDENTIALS], extraAttributes: {} };
    yield {
      kind: 'roster',
      items: friends.map((jid, i) => ({ jid, name: `Friend ${i}`, subscription: 'both' as const, groups: ['Friends'] })),
    };
    yield {
      kind: 'vcard',
      vcard: element('vCard', NS.vcardTemp, {}, [element('FN', NS.vcardTemp, {}, [`User ${a}`]), element('NICKNAME', NS.vcardTemp, {}, [name])]),
    };
    yield {
      kind: 'pep-node',
      node: 'urn:xmpp:bookmarks:1',
      config: [
        { var: 'pubsub#access_model', values: ['whitelist'] },
        { var: 'pubsub#persist_items', values: ['1'] },
      ],
      affiliations: [{ jid: me, affiliation: 'owner' }],
      subscriptions: [],
    };
    yield {
      kind: 'pep-item',
      node: 'urn:xmpp:bookmarks:1',
      id: 'lobby@conference.example.org',
      payload: element('conference', 'urn:xmpp:bookmarks:1', { name: 'Lobby', autojoin: 'true' }, [element('nick', 'urn:xmpp:bookmarks:1', {}, [name])]),
    };
    const start = Date.UTC(2025, 0, 1) / 1000 + a * 60;
    for (let m = 0; m < 3; m++) {
      const outgoing = m % 2 === 0;
      const peer = friends[m % 2] ?? me;
      yield {
        kind: 'archive',
        id: `${a.toString(36)}-${m}-${createHash('sha1').update(`${a}:${m}`).digest('hex').slice(0, 12)}`,
        timestamp: new Date((start + m) * 1000).toISOString().replace('.000Z', 'Z'),
        stanza: outgoing ? chat(`${me}/phone`, peer, `m${m}`, `Hello #${m} from ${name}`) : chat(`${peer}/laptop`, me, `m${m}`, `Reply #${m} to ${name}`),
      };
    }
    yield { kind: 'offline', timestamp: new Date((start + 10) * 1000).toISOString().replace('.000Z', 'Z'), stanza: chat(`${friends[0]}/laptop`, me, 'off1', 'Are you there?') };
    yield { kind: 'user-end' };
  }
  yield { kind: 'host-end' };
}
