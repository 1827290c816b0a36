/**
 * Failures of a client-protocol pull, typed so that faces can map them to answers. Messages are
 * fixed texts plus the account's JID and the server's own condition names: never a password,
 * never SASL data.
 */

export type PullFailure =
  /** The outgoing-request policy refuses every address the domain resolved to. */
  | 'address-refused'
  /** No address answered, or DNS failed. */
  | 'connect-failed'
  /** The server offers no TLS and plaintext was not explicitly allowed. */
  | 'tls-unavailable'
  /** The server's certificate does not verify against the trusted CAs for the domain. */
  | 'tls-verify-failed'
  /** SASL failed: wrong password, unknown account, or no mechanism both sides accept. */
  | 'auth-failed'
  /** The connection closed or broke before the pull ended. */
  | 'connection-lost'
  /** The server did not answer in time. */
  | 'timeout'
  /** The server kept asking to wait (`resource-constraint`, type `wait`) past the last retry. */
  | 'throttled'
  /** The server sent something this client cannot follow (stream error, bad answer). */
  | 'protocol';

const SUMMARY: Readonly<Record<PullFailure, string>> = {
  'address-refused': 'the XMPP server resolves only to addresses that the outgoing-request policy refuses',
  'connect-failed': 'the XMPP server could not be reached',
  'tls-unavailable': 'the XMPP server offers no TLS; plaintext connections are not allowed',
  'tls-verify-failed': "the XMPP server's certificate could not be verified",
  'auth-failed': 'the XMPP server refused the login (wrong password or unknown account)',
  'connection-lost': 'the connection to the XMPP server was lost before the pull finished',
  timeout: 'the XMPP server did not answer in time',
  throttled: 'the XMPP server kept asking to wait (throttling) after every retry; try again later',
  protocol: 'the XMPP server answered in a way this client cannot follow',
};

export class XmppPullError extends Error {
  constructor(
    readonly code: PullFailure,
    /** Extra detail safe to show: a JID, a domain, a condition name; never a secret. */
    readonly detail?: string,
    options?: { cause?: unknown },
  ) {
    super(detail ? `${SUMMARY[code]} (${detail})` : SUMMARY[code], options);
    this.name = 'XmppPullError';
  }
}

/** An IQ answered with type="error". */
export class XmppStanzaError extends Error {
  constructor(
    readonly condition: string,
    readonly errorType: string,
    readonly text?: string,
  ) {
    super(`${condition} (${errorType})${text ? `: ${text}` : ''}`);
    this.name = 'XmppStanzaError';
  }
}
