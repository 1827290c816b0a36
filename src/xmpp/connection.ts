/**
 * The XEP-0114 connection: handshake with the component secret, IQ requests with timeouts, and
 * reconnection with exponential backoff and jitter. It never gives up on its own: a server that
 * is down for an hour is reconnected to when it comes back, while the HTTP API keeps serving.
 */
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { NS, type Stanza } from './ltx.js';
import { withTimeout } from '../lib/timeout.js';

export type ConnectionState = 'stopped' | 'connecting' | 'online' | 'waiting';

export interface BackoffOptions {
  /** Delay before the first retry; each further failure doubles it. Default 1 s. */
  readonly initialMs: number;
  /** Upper bound of the delay. Default 60 s. */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1000, maxMs: 60_000 };

/**
 * Delay before retry number `failures` (0 for the first): "equal jitter", never sooner than half
 * the exponential step (a flapping server is not hammered) and spread over the other half (many
 * replicas restarted together do not reconnect in lockstep).
 */
export function backoffDelay(failures: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(failures, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** An IQ answered with type="error". */
export class StanzaError extends Error {
  constructor(
    readonly condition: string,
    readonly errorType: string = 'cancel',
    readonly text?: string,
  ) {
    super(`${condition}${text ? `: ${text}` : ''}`);
    this.name = 'StanzaError';
  }

  static fromStanza(stanza: Stanza): StanzaError {
    const error = stanza.getChild('error');
    const condition = error?.getChildElements().find((c) => c.getNS() === NS.stanzas && c.name !== 'text');
    const text = error?.getChildText('text', NS.stanzas) ?? undefined;
    return new StanzaError(condition?.name ?? 'undefined-condition', error?.attrs.type ?? 'cancel', text || undefined);
  }
}

/** Sending while disconnected. */
export class OfflineError extends Error {
  constructor() {
    super('the XMPP component is not connected');
    this.name = 'OfflineError';
  }
}

export interface LogSink {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface ConnectionOptions {
  /** `xmpp://host:port`. */
  readonly service: string;
  /** The component's JID. */
  readonly domain: string;
  readonly secret: string;
  readonly backoff?: BackoffOptions;
  /** Handshake deadline per attempt. Default 10 s. */
  readonly connectTimeoutMs?: number;
  readonly log: LogSink;
  /** Every stanza except IQ results and errors, which answer our own requests. */
  readonly onStanza: (stanza: Stanza) => void;
  readonly onStateChange?: (state: ConnectionState) => void;
}

// ---------------------------------------------------------------------------------------------
// The untyped xmpp.js component entity, as far as we use it.

interface Entity {
  status: string;
  socket: { destroy(): void } | null;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  removeAllListeners(): unknown;
  emit(event: string, ...args: unknown[]): boolean;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  send(element: Stanza): Promise<void>;
  authenticate(id: string | undefined, password: string): Promise<void>;
}

type EntityClass = new (options: { service: string; domain: string }) => Entity;

const fromHere = createRequire(import.meta.url);
const ComponentEntity = (
  createRequire(fromHere.resolve('@xmpp/component'))('@xmpp/component-core') as { Component: EntityClass }
).Component;

interface Pending {
  readonly to: string;
  readonly resolve: (stanza: Stanza) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class ComponentConnection {
  private entity: Entity | undefined;
  private stateValue: ConnectionState = 'stopped';
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<string, Pending>();
  private readonly idPrefix = randomBytes(4).toString('hex');
  private counter = 0;
  private onlineWaiters: (() => void)[] = [];
  /** Why the last attempt or connection failed; for logs and status. */
  lastError: string | undefined;
  /** Successful connections so far (the first included). */
  connections = 0;

  constructor(private readonly options: ConnectionOptions) {
    if (!/^xmpp:\/\//.test(options.service)) {
      // component-core speaks plain TCP only; TLS to a local server is what a proxy is for.
      throw new Error(`component.service must be an xmpp:// URL (got ${options.service})`);
    }
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  get online(): boolean {
    return this.stateValue === 'online';
  }

  /** Starts connecting in the background; resolves at once. */
  start(): void {
    if (this.stateValue !== 'stopped') return;
    this.setState('connecting');
    void this.attempt();
  }

  /** Resolves once online (or rejects after `timeoutMs`); for tests and start-up checks. */
  waitOnline(timeoutMs: number): Promise<void> {
    if (this.online) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.onlineWaiters = this.onlineWaiters.filter((w) => w !== done);
        reject(new Error(`component not online within ${timeoutMs} ms (last error: ${this.lastError ?? 'none'})`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.onlineWaiters.push(done);
    });
  }

  async stop(): Promise<void> {
    const entity = this.entity;
    this.entity = undefined;
    clearTimeout(this.retryTimer);
    this.setState('stopped');
    this.failAll(new OfflineError());
    if (entity) {
      try {
        // Closes the stream politely; the server then drops the session without an error.
        await withTimeout(entity.stop(), 3000);
      } catch {
        // Already gone.
      }
      dispose(entity);
    }
  }

  async send(stanza: Stanza): Promise<void> {
    const entity = this.entity;
    if (!entity || !this.online) throw new OfflineError();
    await entity.send(stanza);
  }

  /** Sends an IQ get/set and resolves with the result; rejects with StanzaError on type="error". */
  request(iq: Stanza, timeoutMs = 15_000): Promise<Stanza> {
    const id = iq.attrs.id ?? `${this.idPrefix}-${++this.counter}`;
    iq.attrs.id = id;
    const to = (iq.attrs.to ?? '').toLowerCase();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new StanzaError('remote-server-timeout', 'wait', `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { to, resolve, reject, timer });
      this.send(iq).catch((err: unknown) => {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
      });
    });
  }

  private setState(state: ConnectionState): void {
    if (this.stateValue === state) return;
    this.stateValue = state;
    this.options.onStateChange?.(state);
    if (state === 'online') {
      const waiters = this.onlineWaiters;
      this.onlineWaiters = [];
      for (const w of waiters) w();
    }
  }

  private async attempt(): Promise<void> {
    if (this.stateValue === 'stopped') return;
    this.setState('connecting');
    const entity = new ComponentEntity({ service: this.options.service, domain: this.options.domain });
    this.entity = entity;
    let lost: (reason: Error) => void = () => undefined;
    const lostPromise = new Promise<never>((_, reject) => {
      lost = reject;
    });
    // Unhandled, Node would throw an 'error' event; the attempt's outcome reports it instead.
    entity.on('error', (...args: unknown[]) => {
      const err = args[0];
      this.lastError = err instanceof Error ? err.message : String(err);
      lost(err instanceof Error ? err : new Error(String(err)));
    });
    entity.on('open', (...args: unknown[]) => {
      const header = args[0] as Stanza;
      entity.authenticate(header.attrs.id, this.options.secret).catch((err: unknown) => {
        entity.emit('error', err instanceof Error ? err : new Error(String(err)));
      });
    });
    entity.on('stanza', (...args: unknown[]) => this.onStanza(args[0] as Stanza));
    entity.on('close', () => {
      // The server closed the stream; closing the socket turns that into 'disconnect'.
      entity.socket?.destroy();
    });
    entity.on('disconnect', () => {
      lost(new Error(this.lastError ?? 'disconnected'));
      if (this.entity === entity) this.onLost(entity);
    });

    try {
      await withTimeout(Promise.race([entity.start(), lostPromise]), this.options.connectTimeoutMs ?? 10_000);
    } catch (err) {
      this.lastError = err instanceof Error ? err.message : String(err);
      if (this.entity === entity) {
        this.entity = undefined;
        dispose(entity);
        this.scheduleRetry();
      }
      return;
    }
    if (this.entity !== entity) {
      // stop() ran while we were connecting.
      dispose(entity);
      return;
    }
    this.failures = 0;
    this.connections++;
    this.lastError = undefined;
    this.options.log.info({ service: this.options.service, domain: this.options.domain }, 'XMPP component connected');
    this.setState('online');
  }

  private onLost(entity: Entity): void {
    this.entity = undefined;
    dispose(entity);
    this.failAll(new OfflineError());
    if (this.stateValue === 'stopped') return;
    if (this.stateValue === 'online') {
      this.options.log.warn({ reason: this.lastError }, 'XMPP component disconnected; reconnecting');
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.stateValue === 'stopped') return;
    const delay = backoffDelay(this.failures, this.options.backoff ?? DEFAULT_BACKOFF);
    // One line per attempt would flood the log while the server is down for long.
    const log = this.failures < 3 || this.failures % 10 === 0 ? this.options.log.warn : this.options.log.debug;
    log.call(this.options.log, { reason: this.lastError, failures: this.failures + 1, retryInMs: delay }, 'XMPP component could not connect');
    this.failures++;
    this.setState('waiting');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.attempt(), delay);
    this.retryTimer.unref();
  }

  private onStanza(stanza: Stanza): void {
    const type = stanza.attrs.type;
    if (stanza.name === 'iq' && (type === 'result' || type === 'error')) {
      const id = stanza.attrs.id ?? '';
      const pending = this.pending.get(id);
      const from = (stanza.attrs.from ?? '').toLowerCase();
      // An answer must come from whom we asked: ids alone could be guessed by another entity.
      if (!pending || (from !== '' && from !== pending.to && pending.to !== '')) return;
      this.pending.delete(id);
      clearTimeout(pending.timer);
      if (type === 'result') pending.resolve(stanza);
      else pending.reject(StanzaError.fromStanza(stanza));
      return;
    }
    this.options.onStanza(stanza);
  }

  private failAll(err: Error): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(err);
      this.pending.delete(id);
    }
  }
}

function dispose(entity: Entity): void {
  entity.removeAllListeners();
  // A late socket error must not become an uncaught 'error' event.
  entity.on('error', () => undefined);
  entity.socket?.destroy();
}
