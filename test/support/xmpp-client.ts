/**
 * A real XMPP user for integration tests, built from @xmpp/client 0.13's parts rather than its
 * `client()` factory so we choose the pieces:
 * - SASL uses our own SCRAM mechanisms (./scram.ts): the stock one sends an empty response with
 *   the installed sasl-scram-sha-1 1.4 and mangles non-ASCII user names;
 * - no stream management (xmpp.js miscounts acks, and Prosody then drops the session), no
 *   reconnect (a dropped connection must fail the test, not heal silently), no STARTTLS (the
 *   test server has no certificate and does not require encryption).
 */
import { createRequire } from 'node:module';
import type { ProsodyHandle } from './prosody.js';
import { ScramSha1, ScramSha256, type SaslMechanismClass } from './scram.js';

// ---------------------------------------------------------------------------------------------
// Minimal types for the untyped CommonJS packages of xmpp.js 0.13.

/** An ltx element as @xmpp/xml builds and parses them. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string | undefined>;
  children: (XmlElement | string)[];
  parent: XmlElement | null;
  is(name: string, xmlns?: string): boolean;
  getNS(): string | undefined;
  getChild(name: string, xmlns?: string): XmlElement | undefined;
  getChildren(name: string, xmlns?: string): XmlElement[];
  getChildText(name: string, xmlns?: string): string | null;
  getChildElements(): XmlElement[];
  text(): string;
  append(...nodes: (XmlElement | string)[]): XmlElement;
  toString(): string;
}

export type XmlChild = XmlElement | string | null | undefined | false | readonly XmlChild[];
export type XmlAttrs = Record<string, string | number | null | undefined>;
type XmlFactory = (name: string, attrs?: XmlAttrs | null, ...children: XmlChild[]) => XmlElement;

interface Emitter {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  removeListener(event: string, listener: (...args: unknown[]) => void): unknown;
}

interface XmppEntity extends Emitter {
  status: string;
  jid: { toString(): string } | null;
  transports: unknown[];
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  send(element: XmlElement): Promise<void>;
}

interface Middleware {
  use(fn: unknown): unknown;
}
interface IqCaller {
  request(stanza: XmlElement, timeoutMs?: number): Promise<XmlElement>;
}
interface Sasl {
  use(mechanism: SaslMechanismClass): unknown;
}

interface XmppModules {
  Client: new (options: { service: string; domain: string; lang?: string }) => XmppEntity;
  Component: new (options: { service: string; domain: string }) => XmppEntity & {
    authenticate(streamId: string | undefined, password: string): Promise<void>;
  };
  xml: XmlFactory;
  tcp(args: { entity: XmppEntity }): void;
  middleware(args: { entity: XmppEntity }): Middleware;
  streamFeatures(args: { middleware: Middleware }): unknown;
  iqCaller(args: { entity: XmppEntity; middleware: Middleware }): IqCaller;
  iqCallee(args: { entity: XmppEntity; middleware: Middleware }): unknown;
  sasl(args: { streamFeatures: unknown }, credentials: { username: string; password: string }): Sasl;
  resourceBinding(args: { iqCaller: IqCaller; streamFeatures: unknown }, resource: string | undefined): void;
  sessionEstablishment(args: { iqCaller: IqCaller; streamFeatures: unknown }): void;
}

function loadXmpp(): XmppModules {
  // Resolve the parts from @xmpp/client's own location: they are its dependencies, not ours,
  // and need not be hoisted next to it.
  const fromHere = createRequire(import.meta.url);
  const req = createRequire(fromHere.resolve('@xmpp/client'));
  const core = req('@xmpp/client-core') as { Client: XmppModules['Client']; xml: XmlFactory };
  // Not a dependency of @xmpp/client: resolve it from the project (it is one of ours).
  const componentCore = createRequire(fromHere.resolve('@xmpp/component'))('@xmpp/component-core') as {
    Component: XmppModules['Component'];
  };
  return {
    Client: core.Client,
    Component: componentCore.Component,
    xml: core.xml,
    tcp: req('@xmpp/tcp') as XmppModules['tcp'],
    middleware: req('@xmpp/middleware') as XmppModules['middleware'],
    streamFeatures: req('@xmpp/stream-features') as XmppModules['streamFeatures'],
    iqCaller: req('@xmpp/iq/caller') as XmppModules['iqCaller'],
    iqCallee: req('@xmpp/iq/callee') as XmppModules['iqCallee'],
    sasl: req('@xmpp/sasl') as XmppModules['sasl'],
    resourceBinding: req('@xmpp/resource-binding') as XmppModules['resourceBinding'],
    sessionEstablishment: req('@xmpp/session-establishment') as XmppModules['sessionEstablishment'],
  };
}

const xmpp = loadXmpp();

/** @xmpp/xml's element builder: `xml('iq', { type: 'get' }, xml('ping', { xmlns: 'urn:xmpp:ping' }))`. */
export const xml: XmlFactory = xmpp.xml;

// ---------------------------------------------------------------------------------------------

export const NS = {
  roster: 'jabber:iq:roster',
  vcard: 'vcard-temp',
  private: 'jabber:iq:private',
  pubsub: 'http://jabber.org/protocol/pubsub',
  pubsubOwner: 'http://jabber.org/protocol/pubsub#owner',
  blocking: 'urn:xmpp:blocking',
  mam: 'urn:xmpp:mam:2',
  rsm: 'http://jabber.org/protocol/rsm',
  forward: 'urn:xmpp:forward:0',
  delay: 'urn:xmpp:delay',
  dataForms: 'jabber:x:data',
  ping: 'urn:xmpp:ping',
} as const;

/** An IQ answered with type="error"; `condition` is the RFC 6120 defined condition. */
export class XmppStanzaError extends Error {
  constructor(
    readonly condition: string,
    readonly errorType: string | undefined,
    readonly text: string | undefined,
    readonly stanza: XmlElement | undefined,
  ) {
    super(`${condition}${errorType ? ` (${errorType})` : ''}${text ? `: ${text}` : ''}`);
    this.name = 'XmppStanzaError';
  }
}

export interface ConnectOptions {
  /** e.g. `xmpp://127.0.0.1:5222`. */
  readonly service: string;
  readonly domain: string;
  readonly username: string;
  readonly password: string;
  readonly resource?: string;
  /**
   * Send initial presence once online. Off by default: an available session makes Prosody
   * deliver (and delete) offline messages and changes where bare-JID messages go.
   */
  readonly presence?: boolean;
  /** Login timeout. Default 10 s. */
  readonly timeoutMs?: number;
}

export interface XmppClient {
  /** Full JID after resource binding. */
  readonly jid: string;
  readonly bareJid: string;
  /** Sends an IQ and resolves with the whole result IQ; rejects with XmppStanzaError on type="error". */
  iq(stanza: XmlElement, timeoutMs?: number): Promise<XmlElement>;
  send(stanza: XmlElement): Promise<void>;
  /**
   * The first incoming stanza matching `predicate`, including ones that arrived before the call
   * and were not yet claimed by another waitFor: send-then-wait cannot race.
   */
  waitFor(predicate: (stanza: XmlElement) => boolean, timeoutMs?: number): Promise<XmlElement>;
  /** Unclaimed incoming stanzas (IQ results are not kept). */
  readonly inbox: readonly XmlElement[];
  /** Connection-level errors seen so far (stream errors, socket errors). */
  readonly errors: readonly unknown[];
  /** Resolves after the server answered a ping, i.e. processed everything sent before. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

type StanzaTap = (stanza: XmlElement) => boolean;

const INBOX_LIMIT = 2000;

class Client implements XmppClient {
  private readonly taps = new Set<StanzaTap>();
  private readonly pending: XmlElement[] = [];
  private closed = false;
  readonly errors: unknown[] = [];

  constructor(
    private readonly entity: XmppEntity,
    private readonly caller: () => IqCaller,
    /** Who answers sync()'s ping: the user's server, or for a component the host it serves. */
    private readonly pingTarget: () => string,
  ) {
    entity.on('stanza', (...args: unknown[]) => this.onStanza(args[0] as XmlElement));
    // Node's EventEmitter throws on an unhandled 'error' event; keep them for tests to inspect.
    entity.on('error', (...args: unknown[]) => this.errors.push(args[0]));
  }

  get jid(): string {
    return this.entity.jid?.toString() ?? '';
  }
  get bareJid(): string {
    return this.jid.split('/')[0] ?? '';
  }
  get inbox(): readonly XmlElement[] {
    return this.pending;
  }

  /** Registers a tap that sees stanzas before the inbox; returns a remover. */
  tap(fn: StanzaTap): () => void {
    this.taps.add(fn);
    return () => this.taps.delete(fn);
  }

  private onStanza(stanza: XmlElement): void {
    if (stanza.name === 'iq' && (stanza.attrs.type === 'result' || stanza.attrs.type === 'error')) return;
    for (const tap of this.taps) {
      if (tap(stanza)) return;
    }
    this.pending.push(stanza);
    if (this.pending.length > INBOX_LIMIT) this.pending.shift();
  }

  async iq(stanza: XmlElement, timeoutMs = 10_000): Promise<XmlElement> {
    try {
      return await this.caller().request(stanza, timeoutMs);
    } catch (err) {
      throw toStanzaError(err, stanza);
    }
  }

  send(stanza: XmlElement): Promise<void> {
    return this.entity.send(stanza);
  }

  waitFor(predicate: (stanza: XmlElement) => boolean, timeoutMs = 5000): Promise<XmlElement> {
    const index = this.pending.findIndex(predicate);
    if (index >= 0) return Promise.resolve(this.pending.splice(index, 1)[0] as XmlElement);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        remove();
        reject(new Error(`waitFor: no matching stanza within ${timeoutMs} ms (${this.jid})`));
      }, timeoutMs);
      const remove = this.tap((stanza) => {
        if (!predicate(stanza)) return false;
        clearTimeout(timer);
        remove();
        resolve(stanza);
        return true;
      });
    });
  }

  async sync(): Promise<void> {
    await this.iq(xml('iq', { type: 'get', to: this.pingTarget() }, xml('ping', { xmlns: NS.ping })));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.taps.clear();
    if (this.entity.status === 'offline') return;
    try {
      await this.entity.stop();
    } catch {
      // The server may already be gone (e.g. a test stopped Prosody first).
    }
  }
}

function toStanzaError(err: unknown, request: XmlElement): Error {
  if (err instanceof Error && 'condition' in err && typeof err.condition === 'string') {
    const e = err as Error & { condition: string; type?: string; text?: string; element?: XmlElement };
    return new XmppStanzaError(e.condition, e.type, e.text || undefined, e.element);
  }
  if (err instanceof Error && err.name === 'TimeoutError') {
    return new Error(`IQ timed out: ${request.toString().slice(0, 300)}`);
  }
  return err instanceof Error ? err : new Error(String(err));
}

export async function connectClient(options: ConnectOptions): Promise<XmppClient> {
  const entity = new xmpp.Client({ service: options.service, domain: options.domain, lang: 'en' });
  xmpp.tcp({ entity });
  // Before any module: its error listener must exist by the time anything can fail.
  const client = new Client(entity, () => iqCaller, () => options.domain);
  const middleware = xmpp.middleware({ entity });
  const streamFeatures = xmpp.streamFeatures({ middleware });
  const iqCaller = xmpp.iqCaller({ entity, middleware });
  // Answers the server's IQs (ping, disco) with service-unavailable instead of ignoring them.
  xmpp.iqCallee({ entity, middleware });
  const sasl = xmpp.sasl({ streamFeatures }, { username: options.username, password: options.password });
  // Order is preference: the first one the server offers wins.
  sasl.use(ScramSha256);
  sasl.use(ScramSha1);
  xmpp.resourceBinding({ iqCaller, streamFeatures }, options.resource);
  xmpp.sessionEstablishment({ iqCaller, streamFeatures });

  const timeoutMs = options.timeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      entity.start(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`login timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    await client.close();
    const who = `${options.username}@${options.domain} via ${options.service}`;
    const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    throw new Error(`login failed for ${who}: ${detail}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  if (options.presence) await client.send(xml('presence'));
  return client;
}

/** connectClient against a test Prosody or ejabberd; `host` defaults to its first VirtualHost. */
export function loginAs(
  prosody: Pick<ProsodyHandle, 'service' | 'hosts'>,
  username: string,
  password: string,
  options: { readonly host?: string; readonly resource?: string; readonly presence?: boolean } = {},
): Promise<XmppClient> {
  return connectClient({
    service: prosody.service,
    domain: options.host ?? prosody.hosts[0] ?? 'localhost',
    username,
    password,
    ...(options.resource !== undefined ? { resource: options.resource } : {}),
    ...(options.presence !== undefined ? { presence: options.presence } : {}),
  });
}

export interface ComponentOptions {
  /** e.g. `xmpp://127.0.0.1:5347` (XEP-0114 accept port). */
  readonly service: string;
  /** The component's JID, e.g. `xporta.localhost`. */
  readonly domain: string;
  readonly secret: string;
  /** A VirtualHost, used as sync()'s ping target. */
  readonly serverHost: string;
  readonly timeoutMs?: number;
}

/**
 * An XEP-0114 component connection with the same wrapper as a user: `iq`, `send`, `waitFor`
 * (which also sees stanzas that arrived during the handshake, e.g. mod_privilege's
 * <privilege/> messages), `close`. Built without @xmpp/reconnect, like connectClient.
 */
export async function connectComponent(options: ComponentOptions): Promise<XmppClient> {
  const entity = new xmpp.Component({ service: options.service, domain: options.domain });
  const client = new Client(entity, () => iqCaller, () => options.serverHost);
  const middleware = xmpp.middleware({ entity });
  const iqCaller = xmpp.iqCaller({ entity, middleware });
  xmpp.iqCallee({ entity, middleware });
  entity.on('open', (...args: unknown[]) => {
    const header = args[0] as XmlElement;
    entity.authenticate(header.attrs.id, options.secret).catch((err: unknown) => client.errors.push(err));
  });
  const timeoutMs = options.timeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      entity.start(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`component handshake timed out after ${timeoutMs} ms (${client.errors.map(String).join('; ')})`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    await client.close();
    throw new Error(`component ${options.domain} could not connect to ${options.service}: ${String(err)}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  return client;
}

/** connectComponent for the test Prosody's configured component. */
export function componentOf(prosody: ProsodyHandle): Promise<XmppClient> {
  return connectComponent({
    service: `xmpp://127.0.0.1:${prosody.componentPort}`,
    domain: prosody.component.jid,
    secret: prosody.component.secret,
    serverHost: prosody.hosts[0] ?? 'localhost',
  });
}

// ---------------------------------------------------------------------------------------------
// Protocol helpers. Each is one request; they return plain data where that is unambiguous and
// elements where a test will want to look at the XML itself.

export interface RosterItem {
  readonly jid: string;
  readonly name?: string;
  readonly subscription: string;
  readonly ask?: string;
  readonly approved?: boolean;
  readonly groups: readonly string[];
}

export async function setRosterItem(
  client: XmppClient,
  jid: string,
  name?: string,
  groups: readonly string[] = [],
): Promise<void> {
  const item = xml('item', { jid, name }, groups.map((g) => xml('group', {}, g)));
  await client.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS.roster }, item)));
}

export async function removeRosterItem(client: XmppClient, jid: string): Promise<void> {
  await client.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS.roster }, xml('item', { jid, subscription: 'remove' }))));
}

export async function getRoster(client: XmppClient): Promise<RosterItem[]> {
  const result = await client.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster })));
  const query = result.getChild('query', NS.roster);
  return (query?.getChildren('item') ?? []).map((item) => {
    const { jid = '', name, subscription = 'none', ask, approved } = item.attrs;
    return {
      jid,
      ...(name !== undefined ? { name } : {}),
      subscription,
      ...(ask !== undefined ? { ask } : {}),
      ...(approved !== undefined ? { approved: approved === 'true' } : {}),
      groups: item.getChildren('group').map((g) => g.text()),
    };
  });
}

/** `vcard` is a `<vCard xmlns='vcard-temp'>` element. */
export async function setVCard(client: XmppClient, vcard: XmlElement): Promise<void> {
  if (!vcard.is('vCard', NS.vcard)) throw new Error('setVCard needs a <vCard xmlns="vcard-temp"/> element');
  await client.iq(xml('iq', { type: 'set' }, vcard));
}

/** The vCard, or undefined when the account has none. */
export async function getVCard(client: XmppClient, jid?: string): Promise<XmlElement | undefined> {
  try {
    const result = await client.iq(xml('iq', { type: 'get', to: jid }, xml('vCard', { xmlns: NS.vcard })));
    const vcard = result.getChild('vCard', NS.vcard);
    return vcard && vcard.getChildElements().length > 0 ? vcard : undefined;
  } catch (err) {
    if (err instanceof XmppStanzaError && err.condition === 'item-not-found') return undefined;
    throw err;
  }
}

export async function setPrivate(client: XmppClient, element: XmlElement): Promise<void> {
  await client.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS.private }, element)));
}

/** The stored element, or undefined when nothing is stored under name+namespace. */
export async function getPrivate(client: XmppClient, name: string, namespace: string): Promise<XmlElement | undefined> {
  const result = await client.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.private }, xml(name, { xmlns: namespace }))));
  const element = result.getChild('query', NS.private)?.getChild(name, namespace);
  if (!element) return undefined;
  const empty = element.children.length === 0 && Object.keys(element.attrs).every((k) => k === 'xmlns');
  return empty ? undefined : element;
}

/** XEP-0060 publish-options; keys without `#` get the `pubsub#` prefix (`access_model` → `pubsub#access_model`). */
export type PublishOptions = Readonly<Record<string, string | readonly string[]>>;

function dataForm(formType: string, fields: PublishOptions): XmlElement {
  return xml(
    'x',
    { xmlns: NS.dataForms, type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, formType)),
    Object.entries(fields).map(([key, value]) =>
      xml(
        'field',
        { var: key.includes('#') || key === 'FORM_TYPE' ? key : `pubsub#${key}` },
        (typeof value === 'string' ? [value] : value).map((v) => xml('value', {}, v)),
      ),
    ),
  );
}

/** Publishes to the user's own PEP node; resolves with the item id the server kept. */
export async function publishPep(
  client: XmppClient,
  node: string,
  id: string | undefined,
  payload: XmlElement,
  publishOptions?: PublishOptions,
): Promise<string> {
  const pubsub = xml(
    'pubsub',
    { xmlns: NS.pubsub },
    xml('publish', { node }, xml('item', { id }, payload)),
    publishOptions && xml('publish-options', {}, dataForm(`${NS.pubsub}#publish-options`, publishOptions)),
  );
  const result = await client.iq(xml('iq', { type: 'set' }, pubsub));
  return result.getChild('pubsub', NS.pubsub)?.getChild('publish')?.getChild('item')?.attrs.id ?? id ?? '';
}

export interface PepItem {
  readonly id: string;
  readonly payload: XmlElement | undefined;
}

export async function getPepItems(client: XmppClient, ownerJid: string | undefined, node: string): Promise<PepItem[]> {
  const result = await client.iq(
    xml('iq', { type: 'get', to: ownerJid ?? client.bareJid }, xml('pubsub', { xmlns: NS.pubsub }, xml('items', { node }))),
  );
  const items = result.getChild('pubsub', NS.pubsub)?.getChild('items')?.getChildren('item') ?? [];
  return items.map((item) => ({ id: item.attrs.id ?? '', payload: item.getChildElements()[0] }));
}

export async function block(client: XmppClient, jids: readonly string[]): Promise<void> {
  await client.iq(xml('iq', { type: 'set' }, xml('block', { xmlns: NS.blocking }, jids.map((jid) => xml('item', { jid })))));
}

export async function getBlocklist(client: XmppClient): Promise<string[]> {
  const result = await client.iq(xml('iq', { type: 'get' }, xml('blocklist', { xmlns: NS.blocking })));
  return (result.getChild('blocklist', NS.blocking)?.getChildren('item') ?? []).map((i) => i.attrs.jid ?? '');
}

let messageCounter = 0;

/**
 * Sends a chat message and waits for a ping round trip, so by the time this resolves the server
 * has routed it (archived both sides, or stored it offline) and a following query sees it.
 */
export async function sendMessage(
  from: XmppClient,
  toJid: string,
  body: string,
  options: { readonly type?: string; readonly id?: string } = {},
): Promise<string> {
  const id = options.id ?? `xporta-test-${process.pid}-${++messageCounter}`;
  await from.send(xml('message', { to: toJid, type: options.type ?? 'chat', id }, xml('body', {}, body)));
  await from.sync();
  return id;
}

export interface MamResult {
  /** The archive id (Prosody's `key`). */
  readonly id: string;
  readonly stamp: string | undefined;
  /** The archived <message/>. */
  readonly message: XmlElement;
}

export interface MamQuery {
  readonly with?: string;
  readonly start?: string;
  readonly end?: string;
  /** Page size (RSM max); every page is fetched. Prosody caps it at 50 by default. */
  readonly max?: number;
  /** Query another archive (e.g. a MUC); default the user's own. */
  readonly archiveJid?: string;
}

let queryCounter = 0;

/** All of the user's MAM results for the filter, oldest first, paging with RSM `after`. */
export async function queryMam(client: XmppClient, query: MamQuery = {}): Promise<MamResult[]> {
  if (!(client instanceof Client)) throw new Error('queryMam needs a client from connectClient()');
  const results: MamResult[] = [];
  let after: string | undefined;
  for (let page = 0; page < 10_000; page++) {
    const queryid = `q${++queryCounter}`;
    const pageResults: MamResult[] = [];
    // Result messages arrive before the IQ result on the same stream, so a tap set up first sees them all.
    const untap = client.tap((stanza) => {
      const result = stanza.name === 'message' ? stanza.getChild('result', NS.mam) : undefined;
      if (!result || result.attrs.queryid !== queryid) return false;
      const forwarded = result.getChild('forwarded', NS.forward);
      const message = forwarded?.getChild('message');
      if (message) {
        pageResults.push({ id: result.attrs.id ?? '', stamp: forwarded?.getChild('delay', NS.delay)?.attrs.stamp, message });
      }
      return true;
    });
    const fields: Record<string, string> = {};
    if (query.with !== undefined) fields.with = query.with;
    if (query.start !== undefined) fields.start = query.start;
    if (query.end !== undefined) fields.end = query.end;
    const form = xml(
      'x',
      { xmlns: NS.dataForms, type: 'submit' },
      xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS.mam)),
      Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v))),
    );
    const set = xml('set', { xmlns: NS.rsm }, xml('max', {}, String(query.max ?? 50)), after !== undefined && xml('after', {}, after));
    let fin: XmlElement | undefined;
    try {
      const iq = await client.iq(xml('iq', { type: 'set', to: query.archiveJid }, xml('query', { xmlns: NS.mam, queryid }, form, set)));
      fin = iq.getChild('fin', NS.mam);
    } finally {
      untap();
    }
    results.push(...pageResults);
    const last = fin?.getChild('set', NS.rsm)?.getChildText('last') ?? undefined;
    if (!fin || fin.attrs.complete === 'true' || last === undefined || pageResults.length === 0) return results;
    after = last;
  }
  throw new Error('queryMam: too many pages');
}

/** Asks `jid` for a presence subscription (RFC 6121 §3.1). */
export async function subscribe(client: XmppClient, jid: string): Promise<void> {
  await client.send(xml('presence', { to: jid, type: 'subscribe' }));
  await client.sync();
}

/** Approves `jid`'s subscription request (or pre-approves it). */
export async function approveSubscription(client: XmppClient, jid: string): Promise<void> {
  await client.send(xml('presence', { to: jid, type: 'subscribed' }));
  await client.sync();
}
