/**
 * A minimal XMPP client stream (RFC 6120) for reading one account: connect to the domain's
 * c2s service, STARTTLS or direct TLS with the certificate verified for the domain, SASL
 * (SCRAM-SHA-256, SCRAM-SHA-1, with channel binding where offered; PLAIN over TLS only), resource binding, then IQs. No presence is
 * ever sent, so the server keeps offline messages for the user's own clients.
 *
 * Every address a service name resolves to is judged by the outgoing-request policy before a
 * socket is opened; a refused address gets no connection at all.
 *
 * Incoming stanzas are parsed with saxes into the model's {@link XmlElement}s. Nothing is read
 * ahead beyond what the server sends for the requests made: callers page their queries, so the
 * memory held is one page.
 */
import { lookup, resolveSrv } from 'node:dns/promises';
import type { Socket} from 'node:net';
import { isIP, connect as netConnect } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { connect as tlsConnect, rootCertificates, type TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { SaxesParser } from 'saxes';
import type { AddressPolicy } from '../../lib/net/address-policy.js';
import { element, firstChild, childElements, textOf, type XmlElement } from '../../records/model.js';
import { NS } from '../../records/namespaces.js';
import { ElementBuilder, listen, serializeElement, escapeAttribute, type NsParser } from '../../xml/xml.js';
import { XmppPullError, XmppStanzaError } from './errors.js';
import { channelBindingData, computableBindings, NS_SASL_CB } from './channel-binding.js';
import { chooseSasl, SaslError, startSasl, type SaslChoice } from './scram.js';

/** Where to connect: a host name or address and port, with TLS from the first byte or via STARTTLS. */
export interface ServiceAddress {
  readonly host: string;
  readonly port: number;
  readonly directTls: boolean;
}

export interface ClientStreamOptions {
  /** The account's bare JID, normalised. */
  readonly jid: string;
  /** Used for SASL only; never logged, never part of an error. */
  readonly password: string;
  readonly policy: AddressPolicy;
  /** Extra trusted CA certificates (PEM), added to Node's bundled roots. */
  readonly ca?: readonly string[];
  /** Accept a server that offers no TLS (SCRAM only then). Off by default. */
  readonly allowPlaintext?: boolean;
  /** Services to try instead of the DNS SRV lookup (a private deployment, tests). */
  readonly services?: readonly ServiceAddress[];
  /** Deadline of each connection step and each IQ. */
  readonly timeoutMs: number;
  /** Largest single stanza accepted, in characters. */
  readonly maxStanzaChars?: number;
  readonly signal?: AbortSignal;
}

const DEFAULT_MAX_STANZA_CHARS = 16 * 1024 * 1024;

/**
 * The domain's c2s services by RFC 6120 §3.2 and XEP-0368: `_xmpps-client` (direct TLS) and
 * `_xmpp-client` (STARTTLS) SRV records in priority order, else the domain itself on 5222.
 */
export async function resolveServices(domain: string): Promise<ServiceAddress[]> {
  const found: { priority: number; weight: number; address: ServiceAddress }[] = [];
  for (const [prefix, directTls] of [
    ['_xmpps-client._tcp.', true],
    ['_xmpp-client._tcp.', false],
  ] as const) {
    try {
      for (const r of await resolveSrv(prefix + domain)) {
        // "." as target: the service is decidedly not available there.
        if (r.name === '' || r.name === '.') continue;
        found.push({ priority: r.priority, weight: r.weight, address: { host: r.name, port: r.port, directTls } });
      }
    } catch {
      // No such record (or no DNS answer): the fallback below applies.
    }
  }
  if (found.length === 0) return [{ host: domain, port: 5222, directTls: false }];
  // Lower priority first; among equals, direct TLS first (one round trip less), then heavier weight.
  found.sort((a, b) => a.priority - b.priority || Number(b.address.directTls) - Number(a.address.directTls) || b.weight - a.weight);
  return found.map((f) => f.address);
}

/** Node's TLS verification failures (OpenSSL verify codes and the host-name check). */
function isCertificateError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /CERT|SELF_SIGNED|VERIFY|ALTNAME|UNABLE_TO_GET_ISSUER/.test(code);
}

type Waiter = { resolve: (el: XmlElement) => void; reject: (err: Error) => void };

/** An authenticated, bound client session. */
export class ClientStream {
  private socket: Socket | TLSSocket | undefined;
  private parser: NsParser | undefined;
  private decoder = new StringDecoder('utf8');
  private builder = new ElementBuilder();
  private stanzaChars = 0;
  private encrypted = false;
  private readonly queue: XmlElement[] = [];
  private waiter: Waiter | undefined;
  private online = false;
  private failure: XmppPullError | undefined;
  private readonly pendingIqs = new Map<string, { resolve: (el: XmlElement) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  private readonly messageListeners = new Set<(message: XmlElement) => void>();
  private nextId = 0;
  private boundJid = '';
  private saslChoice: SaslChoice | undefined;
  private readonly domain: string;
  private readonly localpart: string;
  private readonly maxStanzaChars: number;

  private constructor(private readonly options: ClientStreamOptions) {
    const at = options.jid.indexOf('@');
    this.localpart = options.jid.slice(0, at);
    this.domain = options.jid.slice(at + 1);
    this.maxStanzaChars = options.maxStanzaChars ?? DEFAULT_MAX_STANZA_CHARS;
  }

  /** Connects, negotiates TLS, authenticates and binds a resource; throws {@link XmppPullError}. */
  static async open(options: ClientStreamOptions): Promise<ClientStream> {
    const stream = new ClientStream(options);
    const onAbort = (): void => stream.fail(new XmppPullError('connection-lost', 'cancelled'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await stream.connectAny();
      await stream.negotiate();
      return stream;
    } catch (err) {
      stream.destroy();
      throw err instanceof XmppPullError ? err : new XmppPullError('protocol', undefined, { cause: err });
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** The full JID the server bound. */
  get jid(): string {
    return this.boundJid;
  }

  get isEncrypted(): boolean {
    return this.encrypted;
  }

  /** The SASL mechanism and gs2 channel-binding flag the login used (a diagnostic). */
  get authentication(): SaslChoice | undefined {
    return this.saslChoice;
  }

  // -------------------------------------------------------------------------------------------
  // Connecting

  private async connectAny(): Promise<void> {
    const services = this.options.services ?? (await resolveServices(this.domain));
    let refused = 0;
    let lastError: XmppPullError | undefined;
    for (const service of services) {
      let addresses: string[];
      try {
        addresses = isIP(service.host) ? [service.host] : (await lookup(service.host, { all: true, verbatim: true })).map((a) => a.address);
      } catch {
        continue;
      }
      const allowed = this.options.policy.allowsName(service.host) ? addresses : addresses.filter((a) => this.options.policy.allowsAddress(a));
      refused += addresses.length - allowed.length;
      for (const address of allowed) {
        try {
          await this.connectTo(address, service);
          return;
        } catch (err) {
          // A certificate that does not verify is an answer, not an unreachable address.
          if (err instanceof XmppPullError && err.code === 'tls-verify-failed') throw err;
          lastError = err instanceof XmppPullError ? err : new XmppPullError('connect-failed', this.domain);
        }
      }
    }
    if (!lastError && refused > 0) throw new XmppPullError('address-refused', this.domain);
    throw lastError ?? new XmppPullError('connect-failed', this.domain);
  }

  private connectTo(address: string, service: ServiceAddress): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new XmppPullError('timeout', `connecting to ${this.domain}`));
      }, this.options.timeoutMs);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(isCertificateError(err) ? new XmppPullError('tls-verify-failed', this.domain) : new XmppPullError('connect-failed', this.domain));
      };
      const socket: Socket | TLSSocket = service.directTls
        ? tlsConnect({ host: address, port: service.port, servername: this.domain, ca: this.trustedCas(), ALPNProtocols: ['xmpp-client'] })
        : netConnect({ host: address, port: service.port });
      socket.once('error', fail);
      socket.once(service.directTls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.removeListener('error', fail);
        this.encrypted = service.directTls;
        this.attach(socket);
        resolve();
      });
    });
  }

  private trustedCas(): string[] | undefined {
    return this.options.ca && this.options.ca.length > 0 ? [...rootCertificates, ...this.options.ca] : undefined;
  }

  private attach(socket: Socket | TLSSocket): void {
    this.socket = socket;
    this.decoder = new StringDecoder('utf8');
    socket.on('data', (chunk: Buffer) => this.feed(this.decoder.write(chunk)));
    socket.on('error', (err) =>
      this.fail(isCertificateError(err) ? new XmppPullError('tls-verify-failed', this.domain) : new XmppPullError('connection-lost', this.domain)),
    );
    socket.on('close', () => this.fail(new XmppPullError('connection-lost', this.domain)));
  }

  /** Starts a new stream on the current socket (after connecting, STARTTLS and SASL). */
  private openStream(): void {
    const parser: NsParser = new SaxesParser({ xmlns: true, position: true });
    this.parser = parser;
    this.builder = new ElementBuilder();
    let depth = 0;
    listen(parser, {
      doctype: () => this.fail(new XmppPullError('protocol', 'DOCTYPE in the stream')),
      error: () => this.fail(new XmppPullError('protocol', 'malformed XML')),
      opentag: (tag) => {
        if (depth++ === 0) {
          if (tag.local !== 'stream' || tag.uri !== NS.stream) this.fail(new XmppPullError('protocol', 'not an XMPP stream'));
          return;
        }
        this.builder.open(tag);
      },
      text: (t) => this.builder.text(t),
      cdata: (t) => this.builder.text(t),
      closetag: () => {
        if (--depth === 0) {
          this.fail(new XmppPullError('connection-lost', `${this.domain} closed the stream`));
          return;
        }
        const el = this.builder.close();
        if (el) {
          this.stanzaChars = 0;
          this.dispatch(el);
        }
      },
    });
    this.write(
      `<?xml version='1.0'?><stream:stream xmlns='${NS.client}' xmlns:stream='${NS.stream}' to='${escapeAttribute(this.domain)}' version='1.0' xml:lang='en'>`,
    );
  }

  private feed(text: string): void {
    if (!this.parser || this.failure) return;
    this.stanzaChars += text.length;
    if (this.stanzaChars > this.maxStanzaChars) {
      this.fail(new XmppPullError('protocol', 'a stanza larger than the limit'));
      return;
    }
    try {
      this.parser.write(text);
    } catch {
      this.fail(new XmppPullError('protocol', 'malformed XML'));
    }
  }

  private write(text: string): void {
    if (this.failure) throw this.failure;
    this.socket?.write(text);
  }

  /** Sends an element in the stream's default namespace. */
  send(el: XmlElement): void {
    this.write(serializeElement(el, NS.client));
  }

  // -------------------------------------------------------------------------------------------
  // Negotiation

  /** The next top-level element during negotiation. */
  private next(what: string): Promise<XmlElement> {
    if (this.failure) return Promise.reject(this.failure);
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new XmppPullError('timeout', what));
      }, this.options.timeoutMs);
      this.waiter = {
        resolve: (el) => {
          clearTimeout(timer);
          resolve(el);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
    });
  }

  private async features(): Promise<XmlElement> {
    const el = await this.next('stream features');
    if (el.name === 'error' && el.xmlns === NS.stream) throw this.streamError(el);
    if (el.name !== 'features' || el.xmlns !== NS.stream) throw new XmppPullError('protocol', `expected stream features, got <${el.name}>`);
    return el;
  }

  private streamError(el: XmlElement): XmppPullError {
    const condition = el.children.find((c): c is XmlElement => typeof c !== 'string' && c.name !== 'text')?.name ?? 'undefined-condition';
    return new XmppPullError('protocol', `stream error ${condition}`);
  }

  private async negotiate(): Promise<void> {
    this.openStream();
    let features = await this.features();
    if (!this.encrypted) {
      if (firstChild(features, 'starttls', NS.tls)) {
        await this.startTls();
        features = await this.features();
      } else if (!this.options.allowPlaintext) {
        throw new XmppPullError('tls-unavailable', this.domain);
      }
    }
    await this.authenticate(features);
    this.openStream();
    features = await this.features();
    const bind = firstChild(features, 'bind', NS.bind);
    if (!bind) throw new XmppPullError('protocol', 'no resource binding offered');
    this.online = true;
    const bound = await this.iq('set', element('bind', NS.bind, {}, [element('resource', NS.bind, {}, [`xporta-${randomBytes(4).toString('hex')}`])]));
    const jid = firstChild(bound, 'bind', NS.bind);
    this.boundJid = (jid && firstChild(jid, 'jid', NS.bind) ? textOf(firstChild(jid, 'jid', NS.bind) as XmlElement) : '') || this.options.jid;
    const session = firstChild(features, 'session', NS.session);
    // RFC 3921 sessions: only when the server still requires one.
    if (session && !firstChild(session, 'optional', NS.session)) await this.iq('set', element('session', NS.session));
  }

  private async startTls(): Promise<void> {
    this.send(element('starttls', NS.tls));
    const answer = await this.next('STARTTLS');
    if (answer.name !== 'proceed') throw new XmppPullError('tls-unavailable', `${this.domain} refused STARTTLS`);
    const plain = this.socket as Socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    this.parser = undefined;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new XmppPullError('timeout', 'TLS handshake')), this.options.timeoutMs);
      const secure = tlsConnect({ socket: plain, servername: this.domain, ca: this.trustedCas() });
      secure.once('error', (err) => {
        clearTimeout(timer);
        secure.destroy();
        reject(isCertificateError(err) ? new XmppPullError('tls-verify-failed', this.domain) : new XmppPullError('connect-failed', `TLS with ${this.domain}`));
      });
      secure.once('secureConnect', () => {
        clearTimeout(timer);
        secure.removeAllListeners('error');
        this.encrypted = true;
        this.attach(secure);
        resolve();
      });
    });
    this.openStream();
  }

  private async authenticate(features: XmlElement): Promise<void> {
    const list = firstChild(features, 'mechanisms', NS.sasl);
    const offered = list ? childElements(list, 'mechanism', NS.sasl).map((m) => textOf(m).trim()) : [];
    const tls = this.encrypted ? (this.socket as TLSSocket) : undefined;
    const advertisedList = firstChild(features, 'sasl-channel-binding', NS_SASL_CB);
    const advertised = advertisedList ? childElements(advertisedList, 'channel-binding', NS_SASL_CB).map((b) => b.attrs.type ?? '') : undefined;
    const choice = chooseSasl(
      offered,
      this.encrypted,
      tls ? { computable: computableBindings(tls), protocol: tls.getProtocol() ?? '', ...(advertised ? { advertised } : {}) } : undefined,
    );
    if (!choice) throw new XmppPullError('auth-failed', `no acceptable SASL mechanism among ${offered.join(', ') || 'none'}`);
    const { mechanism, binding } = choice;
    this.saslChoice = choice;
    const bindingData = binding.flag === 'p' && tls ? channelBindingData(tls, binding.type) : undefined;
    const exchange = startSasl(mechanism, this.localpart, this.options.password, { binding, ...(bindingData ? { bindingData } : {}) });
    this.send(element('auth', NS.sasl, { mechanism }, [exchange.initial().toString('base64')]));
    for (;;) {
      const answer = await this.next('SASL');
      const data = Buffer.from(textOf(answer).trim(), 'base64');
      try {
        if (answer.name === 'challenge') {
          this.send(element('response', NS.sasl, {}, [exchange.challenge(data).toString('base64')]));
          continue;
        }
        if (answer.name === 'success') {
          exchange.success(data);
          return;
        }
      } catch (err) {
        if (err instanceof SaslError) throw new XmppPullError('auth-failed', `${this.options.jid}: ${err.message}`);
        throw err;
      }
      if (answer.name === 'failure') {
        const condition = answer.children.find((c): c is XmlElement => typeof c !== 'string' && c.name !== 'text')?.name ?? 'not-authorized';
        throw new XmppPullError('auth-failed', `${this.options.jid}: ${condition}`);
      }
      throw new XmppPullError('protocol', `unexpected <${answer.name}> during SASL`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Stanzas

  private dispatch(el: XmlElement): void {
    if (!this.online) {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve(el);
      } else {
        this.queue.push(el);
      }
      return;
    }
    if (el.name === 'error' && el.xmlns === NS.stream) {
      this.fail(this.streamError(el));
      return;
    }
    if (el.name === 'iq') {
      const type = el.attrs.type;
      const id = el.attrs.id ?? '';
      if (type === 'result' || type === 'error') {
        const pending = this.pendingIqs.get(id);
        if (!pending) return;
        this.pendingIqs.delete(id);
        clearTimeout(pending.timer);
        if (type === 'result') pending.resolve(el);
        else pending.reject(stanzaErrorOf(el));
        return;
      }
      // We offer no services: the server's own requests (ping, disco) get a polite refusal.
      if (type === 'get' || type === 'set') {
        this.send(
          element('iq', NS.client, { type: 'error', id, ...(el.attrs.from ? { to: el.attrs.from } : {}) }, [
            element('error', NS.client, { type: 'cancel' }, [element('service-unavailable', NS.stanzas)]),
          ]),
        );
      }
      return;
    }
    if (el.name === 'message') for (const listener of this.messageListeners) listener(el);
  }

  /** Listens to incoming messages (MAM results); returns the remover. */
  onMessage(listener: (message: XmlElement) => void): () => void {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  /**
   * Sends an IQ with `payload` and resolves with the result IQ. Rejects with
   * {@link XmppStanzaError} on type="error" and {@link XmppPullError} when the stream fails.
   */
  iq(type: 'get' | 'set', payload: XmlElement, to?: string): Promise<XmlElement> {
    if (this.failure) return Promise.reject(this.failure);
    const id = `x${++this.nextId}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingIqs.delete(id);
        reject(new XmppPullError('timeout', `<${payload.name} xmlns='${payload.xmlns}'>`));
      }, this.options.timeoutMs);
      this.pendingIqs.set(id, { resolve, reject, timer });
      try {
        this.send(element('iq', NS.client, { type, id, ...(to ? { to } : {}) }, [payload]));
      } catch (err) {
        clearTimeout(timer);
        this.pendingIqs.delete(id);
        reject(err as Error);
      }
    });
  }

  /** Fails everything waiting, once; later calls reject with the same error. */
  private fail(err: XmppPullError): void {
    if (this.failure) return;
    this.failure = err;
    this.online = false;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(err);
    for (const [id, pending] of this.pendingIqs) {
      clearTimeout(pending.timer);
      pending.reject(err);
      this.pendingIqs.delete(id);
    }
    this.socket?.destroy();
  }

  /** Ends the session at once: everything waiting fails with `reason`. */
  abort(reason: XmppPullError): void {
    this.fail(reason);
  }

  /** Whether the stream has failed (or was closed). */
  get failed(): XmppPullError | undefined {
    return this.failure;
  }

  /** Ends the stream politely and closes the socket. */
  async close(): Promise<void> {
    if (this.failure || !this.socket) {
      this.destroy();
      return;
    }
    const socket = this.socket;
    this.failure = new XmppPullError('connection-lost', 'closed');
    for (const [, pending] of this.pendingIqs) {
      clearTimeout(pending.timer);
      pending.reject(this.failure);
    }
    this.pendingIqs.clear();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        socket.destroy();
        resolve();
      }, 1000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.end('</stream:stream>');
    });
  }

  private destroy(): void {
    this.failure ??= new XmppPullError('connection-lost', 'closed');
    this.socket?.destroy();
  }
}

/** The defined condition of an IQ error. */
export function stanzaErrorOf(iq: XmlElement): XmppStanzaError {
  const error = firstChild(iq, 'error');
  const condition = error ? childElements(error).find((c) => c.xmlns === NS.stanzas && c.name !== 'text') : undefined;
  const text = error ? firstChild(error, 'text', NS.stanzas) : undefined;
  return new XmppStanzaError(condition?.name ?? 'undefined-condition', error?.attrs.type ?? 'cancel', text ? textOf(text) : undefined);
}
