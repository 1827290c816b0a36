/**
 * Every HTTP request xporta makes on a caller's behalf goes through here: import-from's pull, the
 * move's data copy, later the client-protocol transport. It imports nothing from the faces
 * (http/, xmpp/), so all of them can use it.
 *
 * - The destination is checked on the addresses a name resolved to, in the connector, right
 *   before the socket connects (src/net/address-policy.ts decides): a numeric host notation, a
 *   name that resolves to an internal address, or a name whose answer changes between a check
 *   and the connection (DNS rebinding) cannot reach what the policy refuses. A refused
 *   destination gets no connection at all.
 * - Redirects are not followed: a 3xx answer is a failure like any other non-success status. The
 *   caller named one URL, and a redirect would carry its bearer token elsewhere.
 * - Deadlines: `idleTimeoutMs` for the connection, the answer's headers and each wait for more
 *   body bytes, where a window of that length bringing fewer than {@link MIN_BYTES_PER_WINDOW}
 *   while xporta was ready to read counts as idle too (a peer trickling a byte now and then);
 *   `totalTimeoutMs` for the whole exchange, body included.
 * - Failures reach callers as {@link OutgoingError} with one of two fixed messages. Its message
 *   never depends on what answered at the address (refused port, closed connection, something
 *   that is not HTTP, any status code, a remote error text), so the service cannot be used to
 *   probe a network; the details are in `internal`, for debug logs only.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import { AddressPolicy, normaliseHost } from './address-policy.js';
import { OutgoingError } from './outgoing-error.js';

export { OUTGOING_MESSAGES, OutgoingError, type OutgoingFailure } from './outgoing-error.js';

/** Raised in the connector; becomes an {@link OutgoingError} `refused`. */
class PolicyRefusal extends Error {
  constructor(readonly addresses: string) {
    super('refused by the outgoing-request policy');
    this.name = 'PolicyRefusal';
  }
}

export interface OutgoingRequest {
  readonly method: 'GET' | 'PUT' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Readable;
  /** Cancels the exchange (the caller went away). */
  readonly signal?: AbortSignal;
  /**
   * The peer answers only once it has processed the whole body (an import link applies the
   * import first): no idle limit on waiting for the answer's headers, the total deadline only.
   */
  readonly answersAfterProcessing?: boolean;
}

export interface OutgoingResponse {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The answer's bytes; any failure while reading is an {@link OutgoingError} `failed`. */
  readonly body: Readable;
}

export interface OutgoingConfig {
  /**
   * CIDR ranges (`10.1.0.0/16`, `::1/128`, a bare address) and host names that may be reached
   * even though they are loopback, private, link-local or otherwise internal. Empty by default.
   */
  readonly allow: readonly string[];
  /** Longest wait for a connection, the answer's headers, or the next bytes of its body . */
  readonly idleTimeoutMs: number;
  /** Longest a whole exchange may take, body included. */
  readonly totalTimeoutMs: number;
  /** Largest JSON answer read (the move's import report); documents are bounded by maxUploadBytes. */
  readonly maxAnswerBytes: number;
}

/** What the outgoing client needs of the service's configuration. */
export interface OutgoingSettings {
  readonly outgoing: OutgoingConfig;
  /** xporta's own origin, always reachable. */
  readonly publicUrl: string;
}

/** The policy, its connection pool and its deadlines; one per configuration. */
export class OutgoingClient {
  private readonly policy: AddressPolicy;
  private readonly agent: Agent;

  private readonly self: string | undefined;

  /**
   * @param selfUrl xporta's own public URL: its exact origin (scheme, host, port) is reachable
   *   whatever the address, so that a move between two accounts of this service works with a
   *   link this service made. Other ports of that host stay refused.
   */
  constructor(
    private readonly config: OutgoingConfig,
    selfUrl?: string,
  ) {
    this.policy = new AddressPolicy(config.allow);
    const self = selfUrl === undefined ? undefined : new URL(selfUrl);
    this.self = self && endpointOf(self.protocol, self.hostname, self.port);
    const base = buildConnector({ timeout: config.idleTimeoutMs });
    const connect: buildConnector.connector = (options, callback) => {
      if (this.self !== undefined && endpointOf(options.protocol, options.hostname, options.port) === this.self) {
        base(options, callback);
        return;
      }
      this.destinations(options.hostname).then(
        (addresses) => {
          // Each allowed address in turn, as a resolver-driven connect would, until one answers.
          const attempt = (i: number): void => {
            base({ ...options, hostname: addresses[i] ?? '' }, (err, socket) => {
              if (err && i + 1 < addresses.length) attempt(i + 1);
              else if (err) callback(err, null);
              else callback(null, socket as NonNullable<typeof socket>);
            });
          };
          attempt(0);
        },
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err)), null),
      );
    };
    this.agent = new Agent({ connect, headersTimeout: config.idleTimeoutMs, bodyTimeout: config.idleTimeoutMs });
  }

  /**
   * The addresses to connect to for `hostname`, in the resolver's order: those the policy
   * allows, all of them when the operator allowed the name itself. Throws {@link PolicyRefusal}
   * when none is left.
   */
  private async destinations(hostname: string): Promise<string[]> {
    const host = normaliseHost(hostname);
    const addresses = isIP(host) ? [host] : (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
    const allowed = this.policy.allowsName(host) ? addresses : addresses.filter((a) => this.policy.allowsAddress(a));
    if (allowed.length === 0) throw new PolicyRefusal(addresses.join(', '));
    return allowed;
  }

  /**
   * Sends the request; resolves once a `expectStatus` answer's headers arrived. Any other status
   * ends the exchange and throws, as does every failure before it.
   */
  async request(url: URL, req: OutgoingRequest, expectStatus: number | readonly number[] = 200): Promise<OutgoingResponse> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OutgoingError('failed', `protocol ${url.protocol}`);
    // Origin and path only: the query may hold a token.
    const where = url.origin + url.pathname;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error(`no complete answer within ${this.config.totalTimeoutMs} ms`)), this.config.totalTimeoutMs);
    timer.unref();
    const signal = req.signal ? AbortSignal.any([req.signal, deadline.signal]) : deadline.signal;
    const summarise = (err: unknown): OutgoingError => {
      if (err instanceof OutgoingError) return err;
      if (deadline.signal.aborted) return new OutgoingError('failed', `${where}: ${describe(deadline.signal.reason)}`);
      const refusal = refusalIn(err);
      if (refusal) return new OutgoingError('refused', `${where}: resolved to ${refusal.addresses}`);
      return new OutgoingError('failed', `${where}: ${describe(err)}`);
    };

    let response: Dispatcher.ResponseData;
    try {
      response = await this.agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: req.method,
        headers: { ...req.headers },
        ...(req.body ? { body: req.body } : {}),
        ...(req.answersAfterProcessing ? { headersTimeout: 0 } : {}),
        signal,
      });
    } catch (err) {
      clearTimeout(timer);
      throw summarise(err);
    }
    if (typeof expectStatus === 'number' ? response.statusCode !== expectStatus : !expectStatus.includes(response.statusCode)) {
      clearTimeout(timer);
      // Not read: its contents are the remote's business, and may be endless.
      response.body.on('error', () => undefined).destroy();
      throw new OutgoingError('failed', `${where}: answered ${response.statusCode}`, response.statusCode);
    }
    response.body.on('close', () => clearTimeout(timer));
    stopTrickle(response.body, this.config.idleTimeoutMs);
    return { headers: response.headers, body: withErrorsMapped(response.body, summarise) };
  }

  /** Reads a whole (small) answer, failing once it passes `maxBytes` (default `maxAnswerBytes`). */
  async readAnswer(response: OutgoingResponse, maxBytes = this.config.maxAnswerBytes): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxBytes) throw new OutgoingError('failed', `answer over ${maxBytes} bytes`);
        chunks.push(chunk);
      }
    } catch (err) {
      response.body.destroy();
      throw err instanceof OutgoingError ? err : new OutgoingError('failed', describe(err));
    }
    return Buffer.concat(chunks, size);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** Fewest body bytes per `idleTimeoutMs` window from a peer that xporta is waiting for. */
export const MIN_BYTES_PER_WINDOW = 1024;

/**
 * Destroys `source` when a whole window of `windowMs` brings fewer than
 * {@link MIN_BYTES_PER_WINDOW} bytes although the reader was not holding it back: windows in
 * which the source was paused by backpressure (xporta's own storage being slow) do not count.
 */
function stopTrickle(source: Readable, windowMs: number): void {
  let bytes = 0;
  let heldBack = false;
  source.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  source.on('pause', () => {
    heldBack = true;
  });
  const timer = setInterval(() => {
    if (!heldBack && !source.isPaused() && bytes < MIN_BYTES_PER_WINDOW) {
      source.destroy(new Error(`fewer than ${MIN_BYTES_PER_WINDOW} bytes in ${windowMs} ms`));
    }
    bytes = 0;
    heldBack = source.isPaused();
  }, windowMs);
  timer.unref();
  source.on('close', () => clearInterval(timer));
}

/**
 * `source` through a PassThrough whose only error is `map(err)` of the source's (pipeline() would
 * hand the original error on first). Destroying the result stops the source.
 */
export function withErrorsMapped(source: Readable, map: (err: unknown) => Error): Readable {
  const out = new PassThrough({ highWaterMark: 64 * 1024 });
  source.on('error', (err) => out.destroy(map(err)));
  out.on('close', () => {
    if (!source.destroyed) source.destroy();
  });
  source.pipe(out);
  return out;
}

/** `protocol//host:port` with the default port filled in, for comparing endpoints. */
function endpointOf(protocol: string, hostname: string, port: string | number | undefined): string {
  const p = port === undefined || port === '' ? (protocol === 'https:' ? 443 : 80) : Number(port);
  return `${protocol}//${normaliseHost(hostname)}:${p}`;
}

function refusalIn(err: unknown): PolicyRefusal | undefined {
  for (let e: unknown = err, i = 0; e instanceof Error && i < 5; e = e.cause, i++) if (e instanceof PolicyRefusal) return e;
  return undefined;
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  return code ? `${code}: ${err.message}` : err.message;
}

const clients = new WeakMap<OutgoingSettings, OutgoingClient>();

/** The client for a configuration, made once: its connection pool is shared by every request. */
export function outgoingClient(config: OutgoingSettings): OutgoingClient {
  let client = clients.get(config);
  if (!client) {
    client = new OutgoingClient(config.outgoing, config.publicUrl);
    clients.set(config, client);
  }
  return client;
}
