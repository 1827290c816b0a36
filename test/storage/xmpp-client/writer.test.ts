/**
 * Units of the client-protocol writer with a stand-in stream that records the IQs and answers
 * from a script: what each record becomes on the wire, that a refused item is listed and the
 * writing goes on, the publish-options fallback, throttling retried, and the report's
 * not-carried lines.
 */
import { describe, expect, it } from 'vitest';
import { XmppStanzaError } from '../../../src/storage/xmpp-client/errors.js';
import type { ClientStream } from '../../../src/storage/xmpp-client/stream.js';
import { archiveNotCarried, pushRecords, sendSubscriptionRequests } from '../../../src/storage/xmpp-client/writer.js';
import { childElements, element, firstChild, type UserRecord, type XmlElement } from '../../../src/records/model.js';

const JID = 'alice@new.example';

/** A stream whose IQ answers come from `answer` (throwing means a stanza error); records what was sent. */
function standIn(answer: (payload: XmlElement, n: number) => void = () => undefined): { stream: ClientStream; iqs: XmlElement[]; sent: XmlElement[] } {
  const iqs: XmlElement[] = [];
  const sent: XmlElement[] = [];
  const stream = {
    jid: `${JID}/xporta`,
    iq: async (_type: string, payload: XmlElement): Promise<XmlElement> => {
      iqs.push(payload);
      answer(payload, iqs.length);
      return element('iq', 'jabber:client', { type: 'result' });
    },
    send: (el: XmlElement): void => void sent.push(el),
  } as unknown as ClientStream;
  return { stream, iqs, sent };
}

async function* from(records: UserRecord[]): AsyncGenerator<UserRecord> {
  yield* records;
}

const bookmarkNode: UserRecord = {
  kind: 'pep-node',
  node: 'urn:xmpp:bookmarks:1',
  config: [
    { var: 'pubsub#access_model', values: ['whitelist'] },
    { var: 'pubsub#persist_items', values: ['true'] },
    { var: 'pubsub#max_items', values: ['max'] },
  ],
  affiliations: [{ jid: 'alice@old.example', affiliation: 'owner' }],
  subscriptions: [],
};
const bookmark = (id: string): UserRecord => ({ kind: 'pep-item', node: 'urn:xmpp:bookmarks:1', id, payload: element('conference', 'urn:xmpp:bookmarks:1', { name: id }) });
const optionFields = (pubsub: XmlElement): string[] =>
  childElements(firstChild(firstChild(pubsub, 'publish-options') ?? pubsub, 'x') ?? pubsub, 'field')
    .map((f) => f.attrs.var ?? '')
    .filter((v) => v !== 'FORM_TYPE');

describe('RemoteAccountWriter', () => {
  it('writes one roster set per item (no subscription), lists what cannot be carried, and skips a moved statement', async () => {
    const { stream, iqs } = standIn();
    const report = await pushRecords(
      stream,
      JID,
      from([
        { kind: 'roster', items: [{ jid: 'bob@example.org', name: 'Bob', subscription: 'both', groups: ['Friends'] }, { jid: JID, subscription: 'none', groups: [] }] },
        { kind: 'archive', id: 'a1', timestamp: '2024-01-01T00:00:00Z', stanza: element('message', 'jabber:client') },
        { kind: 'archive', id: 'a2', timestamp: '2024-01-01T00:00:01Z', stanza: element('message', 'jabber:client') },
        { kind: 'offline', stanza: element('message', 'jabber:client') },
        { kind: 'pep-node', node: 'urn:xmpp:moved:1', config: [], affiliations: [], subscriptions: [] },
        { kind: 'pep-item', node: 'urn:xmpp:moved:1', id: 'current', payload: element('moved', 'urn:xmpp:moved:1') },
        { kind: 'blocklist', items: ['spam@example.net'] },
      ]),
    );
    expect(iqs.map((p) => `${p.name} ${p.xmlns}`)).toEqual(['query jabber:iq:roster', 'block urn:xmpp:blocking']);
    const item = firstChild(iqs[0] as XmlElement, 'item');
    expect(item?.attrs).toEqual({ jid: 'bob@example.org', name: 'Bob' });
    expect(report.written).toEqual({ roster: 1, blocklist: 1 });
    // In the order the kinds first came.
    expect(report.notCarried).toEqual([
      '1 roster subscription states — a client cannot set them; they come back as contacts accept subscription requests',
      archiveNotCarried(2),
      '1 offline messages — only a server can store messages for delivery to its own account',
    ]);
  });

  it('publishes PEP items with the access model; when the options are refused, with the access model alone', async () => {
    const { stream, iqs } = standIn((payload, n) => {
      if (n === 1) throw new XmppStanzaError('resource-constraint', 'wait', "Unknown field 'pubsub#persist_items'");
    });
    const report = await pushRecords(stream, JID, from([bookmarkNode, bookmark('a@muc'), bookmark('b@muc')]));
    expect(iqs.map(optionFields)).toEqual([['pubsub#access_model', 'pubsub#persist_items'], ['pubsub#access_model'], ['pubsub#access_model']]);
    expect(report.written).toEqual({ pep: 2 });
    expect(report.refused).toEqual([]);
  });

  it('lists a refused item and goes on; retries a throttled one', async () => {
    let throttled = 0;
    const { stream } = standIn((payload) => {
      if (payload.name === 'vCard') throw new XmppStanzaError('not-allowed', 'cancel');
      if (payload.xmlns === 'jabber:iq:private' && throttled++ === 0) throw new XmppStanzaError('resource-constraint', 'wait');
    });
    const report = await pushRecords(
      stream,
      JID,
      from([
        { kind: 'vcard', vcard: element('vCard', 'vcard-temp') },
        { kind: 'private', element: element('storage', 'storage:rosternotes') },
      ]),
      { backoffMs: 1 },
    );
    expect(report.refused).toEqual(['vCard: not-allowed']);
    expect(report.written).toEqual({ private: 1 });
    expect(throttled).toBe(2);
  });

  it('a broken stream is thrown, not listed', async () => {
    const { stream } = standIn(() => {
      throw new Error('connection lost');
    });
    await expect(pushRecords(stream, JID, from([{ kind: 'vcard', vcard: element('vCard', 'vcard-temp') }]))).rejects.toThrow('connection lost');
  });

  it('sends directed subscribe presences with the payload, then waits for an IQ answer', async () => {
    const { stream, iqs, sent } = standIn(() => {
      throw new XmppStanzaError('service-unavailable', 'cancel');
    });
    const moved = element('moved', 'urn:xmpp:moved:1', {}, [element('old-jid', 'urn:xmpp:moved:1', {}, ['alice@old.example'])]);
    await sendSubscriptionRequests(stream, ['bob@example.org', 'carol@example.org'], [moved]);
    expect(sent).toEqual([
      element('presence', 'jabber:client', { type: 'subscribe', to: 'bob@example.org' }, [moved]),
      element('presence', 'jabber:client', { type: 'subscribe', to: 'carol@example.org' }, [moved]),
    ]);
    expect(iqs.map((p) => p.name)).toEqual(['ping']);
  });
});
