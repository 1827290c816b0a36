/**
 * Fills alice's account on a test ejabberd through real clients: a roster item with groups and
 * a pending-out request, a pending-in request from carol, a vCard, private XML, two PEP nodes
 * (one whitelisted), a block, three archived messages of which two reach her offline.
 */
import type { EjabberdHandle } from './ejabberd.js';
import {
  block,
  connectClient,
  publishPep,
  sendMessage,
  setPrivate,
  setRosterItem,
  setVCard,
  subscribe,
  xml,
  type XmppClient,
} from './xmpp-client.js';

export const EJ_ALICE_PASSWORD = 'alice secret ü';

export interface EjabberdPopulated {
  readonly bodies: readonly string[];
  readonly offlineBodies: readonly string[];
}

export async function populateEjabberdAlice(ej: EjabberdHandle, host = 'localhost'): Promise<EjabberdPopulated> {
  for (const u of ['alice', 'bob', 'carol']) await ej.register(u, host, u === 'alice' ? EJ_ALICE_PASSWORD : 'pw');
  const login = (username: string, password: string, presence = false): Promise<XmppClient> =>
    connectClient({ service: ej.service, domain: host, username, password, presence });
  const alice = await login('alice', EJ_ALICE_PASSWORD);
  const bob = await login('bob', 'pw', true);
  const carol = await login('carol', 'pw');
  try {
    await setRosterItem(alice, `bob@${host}`, 'Bob', ['Friends', 'Work']);
    await subscribe(alice, `bob@${host}`);
    await subscribe(carol, `alice@${host}`);
    await setVCard(alice, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Alice Example'), xml('NICKNAME', {}, 'ali')));
    await setPrivate(alice, xml('notes', { xmlns: 'urn:example:notes' }, xml('note', {}, 'remember')));
    await publishPep(alice, 'urn:xmpp:bookmarks:1', `room@conference.${host}`, xml('conference', { xmlns: 'urn:xmpp:bookmarks:1', name: 'Room', autojoin: 'true' }), {
      'pubsub#persist_items': 'true',
      'pubsub#access_model': 'whitelist',
    });
    await publishPep(alice, 'http://jabber.org/protocol/nick', 'current', xml('nick', { xmlns: 'http://jabber.org/protocol/nick' }, 'Ali'));
    await block(alice, ['spammer@example.net']);
    await sendMessage(alice, `bob@${host}`, 'hello bob');
    // alice sent no presence: bob's messages to her bare JID are archived and stored offline.
    await sendMessage(bob, `alice@${host}`, 'hello alice');
  } finally {
    await alice.close();
  }
  try {
    await sendMessage(bob, `alice@${host}`, 'while you were away');
  } finally {
    await bob.close();
    await carol.close();
  }
  return { bodies: ['hello bob', 'hello alice', 'while you were away'], offlineBodies: ['hello alice', 'while you were away'] };
}
