/**
 * The one table of XML namespace URIs: those of the XEP-0227 format, of the stanzas and payloads
 * the records hold, and of the protocols the XMPP component and the client-protocol reader speak.
 * Keys name the protocol; a URI appears once.
 */
export const NS = {
  // XEP-0227 and its extensions
  pie: 'urn:xmpp:pie:0',
  /** Pre-1.0 namespace that ejabberd still accepts on import. */
  pieLegacy: 'http://www.xmpp.org/extensions/xep-0227.html#ns',
  scram: 'urn:xmpp:pie:0#scram',
  mamArchive: 'urn:xmpp:pie:0#mam',
  /** Prosody's namespace for account keys it has no standard element for. */
  prosodyExtended: 'http://prosody.im/protocol/extended-xep0227',
  /** xporta's own extension attributes (publish time of PEP items, archive `with`). */
  xporta: 'urn:xporta:pie-ext:0',

  // Stanzas and account data
  client: 'jabber:client',
  server: 'jabber:server',
  stanzas: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  mam: 'urn:xmpp:mam:2',
  rsm: 'http://jabber.org/protocol/rsm',
  forward: 'urn:xmpp:forward:0',
  delay: 'urn:xmpp:delay',
  roster: 'jabber:iq:roster',
  vcardTemp: 'vcard-temp',
  vcard4: 'urn:ietf:params:xml:ns:vcard-4.0',
  private: 'jabber:iq:private',
  pubsub: 'http://jabber.org/protocol/pubsub',
  pubsubOwner: 'http://jabber.org/protocol/pubsub#owner',
  dataForms: 'jabber:x:data',
  blocking: 'urn:xmpp:blocking',
  privacy: 'jabber:iq:privacy',
  /** XEP-0402 bookmarks, the PEP node's name as well. */
  bookmarks: 'urn:xmpp:bookmarks:1',
  /** XEP-0048 bookmarks in private XML storage. */
  legacyBookmarks: 'storage:bookmarks',

  // Client streams (RFC 6120)
  stream: 'http://etherx.jabber.org/streams',
  tls: 'urn:ietf:params:xml:ns:xmpp-tls',
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl',
  bind: 'urn:ietf:params:xml:ns:xmpp-bind',
  session: 'urn:ietf:params:xml:ns:xmpp-session',

  // Services
  discoInfo: 'http://jabber.org/protocol/disco#info',
  discoItems: 'http://jabber.org/protocol/disco#items',
  commands: 'http://jabber.org/protocol/commands',
  ping: 'urn:xmpp:ping',
  privilege: 'urn:xmpp:privilege:2',
  /** XEP-0356 before 0.4: no IQ permission, same roster/message/presence semantics. */
  privilegeLegacy: 'urn:xmpp:privilege:1',
  moved: 'urn:xmpp:moved:1',

  // XML itself
  xinclude: 'http://www.w3.org/2001/XInclude',
  xml: 'http://www.w3.org/XML/1998/namespace',
  xmlns: 'http://www.w3.org/2000/xmlns/',
} as const;
