/**
 * XEP-0227 documents for tests, written by hand as a peer would, with SCRAM credentials derived
 * from a known password so that a real client can prove they arrived.
 */
import { createHash, createHmac, pbkdf2Sync, randomUUID } from 'node:crypto';

export type Mechanism = 'SCRAM-SHA-1' | 'SCRAM-SHA-256';

export interface ScramSet {
  readonly mechanism: Mechanism;
  readonly iterationCount: number;
  /** base64 */
  readonly salt: string;
  readonly storedKey: string;
  readonly serverKey: string;
}

/** RFC 5802 key derivation. The salt is a UUID's text, as Prosody makes them. */
export function deriveScram(password: string, mechanism: Mechanism = 'SCRAM-SHA-1', iterationCount = 4096, salt = randomUUID()): ScramSet {
  const hash = mechanism === 'SCRAM-SHA-1' ? 'sha1' : 'sha256';
  const saltBytes = Buffer.from(salt, 'utf8');
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), saltBytes, iterationCount, hash === 'sha1' ? 20 : 32, hash);
  const clientKey = createHmac(hash, salted).update('Client Key').digest();
  return {
    mechanism,
    iterationCount,
    salt: saltBytes.toString('base64'),
    storedKey: createHash(hash).update(clientKey).digest('base64'),
    serverKey: createHmac(hash, salted).update('Server Key').digest('base64'),
  };
}

export function scramXml(s: ScramSet): string {
  return (
    `<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='${s.mechanism}'>` +
    `<iter-count>${s.iterationCount}</iter-count><salt>${s.salt}</salt>` +
    `<server-key>${s.serverKey}</server-key><stored-key>${s.storedKey}</stored-key></scram-credentials>`
  );
}

export interface AccountDocumentOptions {
  readonly host: string;
  readonly user: string;
  readonly password: string;
  readonly mechanism?: Mechanism;
  /** Archived messages to include (default 3). */
  readonly archiveCount?: number;
}

/** A one-user document with every data kind, the way a careful exporter writes it. */
export function accountDocument(o: AccountDocumentOptions): string {
  const me = `${o.user}@${o.host}`;
  const scram = deriveScram(o.password, o.mechanism ?? 'SCRAM-SHA-1');
  const archive: string[] = [];
  for (let i = 0; i < (o.archiveCount ?? 3); i++) {
    const out = i % 2 === 0;
    const stamp = new Date(Date.UTC(2026, 0, 1, 12, 0, i)).toISOString().replace('.000', '');
    archive.push(
      `<result xmlns='urn:xmpp:mam:2' id='arch-${i}'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='${stamp}'/>` +
        `<message xmlns='jabber:client' from='${out ? `${me}/phone` : 'bob@example.net/laptop'}' to='${out ? 'bob@example.net' : me}' type='chat' id='m${i}'>` +
        `<body>message ${i}: Grüße &amp; &lt;tags&gt; 🎉</body></message></forwarded></result>`,
    );
  }
  return `<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='urn:xmpp:pie:0'>
<host jid='${o.host}'>
<user name='${o.user}'>
${scramXml(scram)}
<query xmlns='jabber:iq:roster' ver='7'>
<item jid='bob@example.net' name='Bob' subscription='both'><group>Friends</group><group>Work</group></item>
<item jid='carol@example.org' subscription='to'/>
<item jid='romeo@montague.example' name='Romeo' subscription='none' ask='subscribe'/>
</query>
<presence xmlns='jabber:client' type='subscribe' from='dave@example.com'><nick xmlns='http://jabber.org/protocol/nick'>Dave</nick></presence>
<vCard xmlns='vcard-temp'><FN>Alice Example</FN><NICKNAME>alice</NICKNAME><PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==</BINVAL></PHOTO></vCard>
<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs' version='2'><theme>dark</theme></prefs></query>
<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='urn:xmpp:bookmarks:1'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field><field var='pubsub#access_model'><value>whitelist</value></field><field var='pubsub#max_items'><value>max</value></field><field var='pubsub#persist_items'><value>1</value></field></x></configure></pubsub>
<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'><item id='lobby@conference.example.org'><conference xmlns='urn:xmpp:bookmarks:1' name='Lobby' autojoin='true'><nick>${o.user}</nick></conference></item></items></pubsub>
<archive xmlns='urn:xmpp:pie:0#mam'>${archive.join('')}</archive>
<offline-messages><message xmlns='jabber:client' from='bob@example.net/laptop' to='${me}' type='chat' id='off1'><body>while you were away</body><delay xmlns='urn:xmpp:delay' from='${o.host}' stamp='2026-01-02T08:00:00Z'/></message></offline-messages>
<blocklist xmlns='urn:xmpp:blocking'><item jid='spammer@spam.example'/></blocklist>
</user>
</host>
</server-data>
`;
}
