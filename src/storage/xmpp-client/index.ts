/**
 * A remote account read over the client protocol as a XEP-0227 document event stream: the
 * same events {@link exportUserDocument} gives for local storage, so the writer and the import
 * pipeline take it unchanged. Credentials are never part of it (the server does not reveal
 * them); offline messages are left on the server (no presence is sent).
 */
import { readFileSync } from 'node:fs';
import type { Config, XmppClientConfig } from '../../config/config.js';
import { AddressPolicy } from '../../lib/net/address-policy.js';
import type { DataKind, DocumentEvent } from '../../records/model.js';
import { XmppPullError } from './errors.js';
import { RemoteAccountReader, UNREADABLE_KINDS, type PullNotes } from './reader.js';
import { ClientStream, type ServiceAddress } from './stream.js';

export { XmppPullError, XmppStanzaError, type PullFailure } from './errors.js';
export { UNREADABLE_KINDS, type PullNotes } from './reader.js';
export { ClientStream, resolveServices, type ClientStreamOptions, type ServiceAddress } from './stream.js';
export { archiveNotCarried, archiveSize, contactsOf, copyMamPreferences, publishOwnPep, pushRecords, RemoteAccountWriter, sendSubscriptionRequests, type PushOptions, type PushReport } from './writer.js';

export interface PullOptions {
  /** The remote account's bare JID, normalised. */
  readonly jid: string;
  /** For this session only. */
  readonly password: string;
  readonly include: ReadonlySet<DataKind>;
  readonly policy: AddressPolicy;
  readonly ca?: readonly string[];
  readonly allowPlaintext?: boolean;
  readonly services?: readonly ServiceAddress[];
  readonly timeoutMs: number;
  readonly pageSize: number;
  readonly throttleAttempts?: number;
  readonly backoffMs?: number;
  /** Longest the whole pull may take, connection included; none when absent. */
  readonly totalTimeoutMs?: number;
  readonly signal?: AbortSignal;
  /**
   * A session already logged in as `jid` to read over instead of logging in again; the caller
   * keeps it open and closes it (an abort or the total timeout still aborts it).
   */
  readonly session?: ClientStream;
}

export interface RemotePull {
  /** host, user (no credentials), records, user-end, host-end; connects on first use. */
  readonly events: AsyncIterable<DocumentEvent>;
  /** Filled as the pull runs: what the server refused, warnings, archive progress. */
  readonly notes: PullNotes;
}

export function pullAccount(options: PullOptions): RemotePull {
  const notes: PullNotes = { refused: [], warnings: [], archiveRead: 0 };
  const at = options.jid.indexOf('@');
  const host = options.jid.slice(at + 1);
  const name = options.jid.slice(0, at);
  const include = new Set([...options.include].filter((k) => !UNREADABLE_KINDS.has(k)));
  async function* events(): AsyncGenerator<DocumentEvent> {
    const started = Date.now();
    const stream = options.session ?? (await ClientStream.open(options));
    const stop = (reason: XmppPullError): void => stream.abort(reason);
    const onAbort = (): void => stop(new XmppPullError('connection-lost', 'cancelled'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const deadline =
      options.totalTimeoutMs !== undefined
        ? setTimeout(() => stop(new XmppPullError('timeout', `the pull took longer than ${options.totalTimeoutMs} ms`)), Math.max(0, options.totalTimeoutMs - (Date.now() - started)))
        : undefined;
    try {
      yield { kind: 'host', jid: host };
      yield { kind: 'user', name, scram: [], extraAttributes: {} };
      const reader = new RemoteAccountReader(stream, options.jid, notes);
      yield* reader.records({
        include,
        pageSize: options.pageSize,
        ...(options.throttleAttempts !== undefined ? { throttleAttempts: options.throttleAttempts } : {}),
        ...(options.backoffMs !== undefined ? { backoffMs: options.backoffMs } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      yield { kind: 'user-end' };
      yield { kind: 'host-end' };
    } finally {
      clearTimeout(deadline);
      options.signal?.removeEventListener('abort', onAbort);
      if (!options.session) await stream.close();
    }
  }
  return { events: events(), notes };
}

/** `domain=host:port` or `domain=host:port/tls` (direct TLS), from `xmppClient.services`. */
export function parseServiceEntry(entry: string): { domain: string; service: ServiceAddress } {
  const match = /^([^=\s]+)=(\[[^\]]+\]|[^:\s/]+):(\d{1,5})(\/tls)?$/.exec(entry.trim());
  if (!match) throw new Error(`${JSON.stringify(entry)} is not domain=host:port or domain=host:port/tls`);
  const port = Number(match[3]);
  if (port < 1 || port > 65535) throw new Error(`${JSON.stringify(entry)}: port out of range`);
  const rawHost = match[2] ?? '';
  return {
    domain: (match[1] ?? '').toLowerCase(),
    service: { host: rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost, port, directTls: match[4] !== undefined },
  };
}

/** The connection settings of `xmppClient` and `outgoing` for one remote JID. */
export function pullSettings(config: Pick<Config, 'outgoing'> & { readonly xmppClient: XmppClientConfig }, jid: string): Omit<PullOptions, 'jid' | 'password' | 'include'> {
  const domain = jid.slice(jid.indexOf('@') + 1);
  const services = config.xmppClient.services.map(parseServiceEntry).filter((s) => s.domain === domain).map((s) => s.service);
  return {
    policy: new AddressPolicy(config.outgoing.allow),
    ...(config.xmppClient.caFile ? { ca: [readFileSync(config.xmppClient.caFile, 'utf8')] } : {}),
    allowPlaintext: config.xmppClient.allowPlaintext,
    ...(services.length > 0 ? { services } : {}),
    timeoutMs: config.xmppClient.timeoutMs,
    totalTimeoutMs: config.outgoing.totalTimeoutMs,
    pageSize: config.xmppClient.pageSize,
  };
}
