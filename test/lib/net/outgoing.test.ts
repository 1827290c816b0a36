/**
 * The outgoing-request policy against real sockets on loopback. Refused destinations must get no
 * connection at all: a listener that records every connection it accepts sees none. Traffic
 * only ever goes to 127.0.0.0/8 or ::1; non-loopback addresses are asserted refused by the
 * address check first, so a request to them cannot leave the host.
 */
import { once } from 'node:events';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutgoingConfig } from '../../../src/config/config.js';
import { AddressPolicy, parseAllowEntry } from '../../../src/lib/net/address-policy.js';
import { OUTGOING_MESSAGES, OutgoingClient, OutgoingError } from '../../../src/lib/net/outgoing.js';

function config(allow: string[], overrides: Partial<OutgoingConfig> = {}): OutgoingConfig {
  return { allow, idleTimeoutMs: 2000, totalTimeoutMs: 5000, maxAnswerBytes: 1024, ...overrides };
}

/** A TCP listener that counts the connections it accepts and answers nothing. */
class Recorder {
  connections = 0;
  private readonly sockets = new Set<Socket>();
  readonly server: Server;
  constructor() {
    this.server = createServer((socket) => {
      this.connections++;
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.destroy();
    });
  }
  async listen(host: string): Promise<number> {
    this.server.listen(0, host);
    await once(this.server, 'listening');
    return (this.server.address() as AddressInfo).port;
  }
  async close(): Promise<void> {
    await new Promise((resolve) => this.server.close(resolve));
  }
}

async function httpServer(host: string, handler: Parameters<typeof createHttpServer>[1]): Promise<{ server: HttpServer; port: number }> {
  const server = createHttpServer(handler);
  server.listen(0, host);
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

async function failure(promise: Promise<unknown>): Promise<OutgoingError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(OutgoingError);
    return err as OutgoingError;
  }
  throw new Error('expected a failure');
}

describe('the address policy', () => {
  const defaults = new AddressPolicy([]);

  it.each([
    '127.0.0.1',
    '127.1',
    '0x7f000001',
    '2130706433',
    '0177.0.0.1',
    '127.255.255.254',
    '0.0.0.0',
    '::',
    '::1',
    '10.0.0.1',
    '172.16.5.4',
    '172.31.255.255',
    '192.168.1.1',
    '100.64.0.1',
    '169.254.169.254',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    '224.0.0.1',
    'ff02::1',
    '255.255.255.255',
    '240.0.0.1',
    '192.0.2.1',
    '198.18.0.1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '[::ffff:127.0.0.1]',
    '::ffff:10.0.0.1',
    '::ffff:169.254.169.254',
    '::7f00:1',
    '64:ff9b::7f00:1',
    '2002:7f00:1::1',
    '2001:db8::1',
    'not an address',
  ])('refuses %s by default', (address) => {
    expect(defaults.allowsAddress(address)).toBe(false);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:93.184.216.34'])('allows the public address %s', (address) => {
    expect(defaults.allowsAddress(address)).toBe(true);
  });

  it('the WHATWG URL parser turns numeric host forms into the dotted quad the check sees', () => {
    for (const host of ['127.1', '0x7f000001', '2130706433', '0177.0.0.1']) expect(new URL(`http://${host}:8080/`).hostname).toBe('127.0.0.1');
    expect(new URL('http://[::ffff:127.0.0.1]/').hostname).toBe('[::ffff:7f00:1]');
  });

  it('lets the allow-list open ranges and names', () => {
    const policy = new AddressPolicy(['127.0.0.0/8', '::1', '::ffff:10.0.0.0/104', 'Xporta.Internal.']);
    expect(policy.allowsAddress('127.1')).toBe(true);
    expect(policy.allowsAddress('::ffff:127.0.0.1')).toBe(true);
    expect(policy.allowsAddress('::1')).toBe(true);
    expect(policy.allowsAddress('10.2.3.4')).toBe(true);
    expect(policy.allowsAddress('192.168.0.1')).toBe(false);
    expect(policy.allowsName('xporta.internal')).toBe(true);
    expect(policy.allowsName('other.internal')).toBe(false);
  });

  it('rejects allow-list entries that are neither ranges nor names', () => {
    expect(() => parseAllowEntry('10.0.0.0/33')).toThrow(/CIDR/);
    expect(() => parseAllowEntry('http://x')).toThrow(/CIDR/);
    expect(() => parseAllowEntry('x:y')).toThrow(/neither/);
    expect(() => parseAllowEntry('a b')).toThrow(/neither/);
    expect(parseAllowEntry('10.0.0.0/8').kind).toBe('range');
  });
});

describe('outgoing requests with the default policy', () => {
  const recorder = new Recorder();
  const recorder6 = new Recorder();
  let port = 0;
  let port6 = 0;
  const client = new OutgoingClient(config([]));

  beforeAll(async () => {
    port = await recorder.listen('127.0.0.1');
    port6 = await recorder6.listen('::1');
  });
  afterAll(async () => {
    await client.close();
    await recorder.close();
    await recorder6.close();
  });

  it.each([
    ['127.0.0.1', () => `http://127.0.0.1:${port}/x`],
    ['127.1', () => `http://127.1:${port}/x`],
    ['0x7f000001', () => `http://0x7f000001:${port}/x`],
    ['2130706433', () => `http://2130706433:${port}/x`],
    ['[::ffff:127.0.0.1]', () => `http://[::ffff:127.0.0.1]:${port}/x`],
    ['localhost (a name that resolves to loopback)', () => `http://localhost:${port}/x`],
    ['https to loopback', () => `https://127.0.0.1:${port}/x`],
    ['::1', () => `http://[::1]:${port6}/x`],
  ])('refuses %s without connecting', async (_name, url) => {
    const err = await failure(client.request(new URL(url()), { method: 'GET' }));
    expect(err.reason).toBe('refused');
    expect(err.message).toBe(OUTGOING_MESSAGES.refused);
    expect(recorder.connections + recorder6.connections).toBe(0);
  });

  it("reaches xporta's own public origin, and nothing else on that host", async () => {
    const { server, port: selfPort } = await httpServer('127.0.0.1', (_req, res) => res.writeHead(200).end('self'));
    const withSelf = new OutgoingClient(config([]), `http://127.0.0.1:${selfPort}`);
    try {
      const response = await withSelf.request(new URL(`http://127.0.0.1:${selfPort}/v1/users/a%40b/import?token=x`), { method: 'GET' });
      expect((await withSelf.readAnswer(response)).toString()).toBe('self');
      expect((await failure(withSelf.request(new URL(`http://127.0.0.1:${port}/`), { method: 'GET' }))).reason).toBe('refused');
      expect((await failure(withSelf.request(new URL(`https://127.0.0.1:${selfPort}/`), { method: 'GET' }))).reason).toBe('refused');
      expect(recorder.connections).toBe(0);
    } finally {
      await withSelf.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it.each(['10.0.0.1', '169.254.169.254'])('refuses %s before any packet leaves', async (address) => {
    // Guard: a policy that let it through would send traffic off the host; stop before that.
    expect(new AddressPolicy([]).allowsAddress(address)).toBe(false);
    const err = await failure(client.request(new URL(`http://${address}/latest/meta-data/`), { method: 'GET' }));
    expect(err.reason).toBe('refused');
  });
});

describe('outgoing requests with loopback on the allow-list', () => {
  const recorder = new Recorder();
  let recorderPort = 0;
  const servers: HttpServer[] = [];
  const raw: Server[] = [];
  const rawSockets = new Set<Socket>();
  let redirectPort = 0;
  let okPort = 0;
  let teapotPort = 0;
  let problemPort = 0;
  let silentPort = 0;
  let garbagePort = 0;
  let hangupPort = 0;
  let closedPort = 0;
  let tricklePort = 0;
  let endlessPort = 0;
  let steadyPort = 0;
  const client = new OutgoingClient(config(['127.0.0.2'], { idleTimeoutMs: 500, totalTimeoutMs: 1500 }));
  const loopback = new OutgoingClient(config(['127.0.0.0/8'], { idleTimeoutMs: 500, totalTimeoutMs: 1500 }));
  // The same idle window, and a total deadline far past any wait a test makes.
  const patient = new OutgoingClient(config(['127.0.0.0/8'], { idleTimeoutMs: 500, totalTimeoutMs: 15_000 }));

  beforeAll(async () => {
    recorderPort = await recorder.listen('127.0.0.1');
    const add = async (host: string, handler: Parameters<typeof createHttpServer>[1]): Promise<number> => {
      const { server, port } = await httpServer(host, handler);
      servers.push(server);
      return port;
    };
    redirectPort = await add('127.0.0.2', (_req, res) => res.writeHead(302, { location: `http://127.0.0.1:${recorderPort}/x` }).end());
    okPort = await add('127.0.0.2', (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
    teapotPort = await add('127.0.0.1', (_req, res) => res.writeHead(418).end('internal teapot secret'));
    problemPort = await add('127.0.0.1', (_req, res) =>
      res.writeHead(401, { 'content-type': 'application/problem+json' }).end('{"detail":"token already used"}'),
    );
    silentPort = await add('127.0.0.1', () => undefined);
    tricklePort = await add('127.0.0.1', (_req, res) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write('x'), 100);
      res.on('close', () => clearInterval(timer));
    });
    steadyPort = await add('127.0.0.1', (_req, res) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write(Buffer.alloc(2048, 'a')), 100);
      res.on('close', () => clearInterval(timer));
    });
    endlessPort = await add('127.0.0.1', (_req, res) => {
      res.writeHead(200);
      const chunk = Buffer.alloc(16 * 1024, 'a');
      const more = (): void => {
        while (res.write(chunk));
      };
      res.on('drain', more);
      more();
    });
    const rawServer = async (onConnection: (socket: Socket) => void): Promise<number> => {
      const server = createServer((socket) => {
        rawSockets.add(socket);
        socket.on('error', () => undefined);
        onConnection(socket);
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      raw.push(server);
      return (server.address() as AddressInfo).port;
    };
    garbagePort = await rawServer((socket) => socket.end('SSH-2.0-OpenSSH_9.2\r\n'));
    hangupPort = await rawServer((socket) => socket.destroy());
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
  });
  afterAll(async () => {
    for (const server of servers) server.closeAllConnections();
    for (const socket of rawSockets) socket.destroy();
    await Promise.all([...servers, ...raw].map((s) => new Promise((resolve) => s.close(resolve))));
    await recorder.close();
    await Promise.all([client.close(), loopback.close(), patient.close()]);
  });

  it('reaches an allowed loopback address', async () => {
    const response = await client.request(new URL(`http://127.0.0.2:${okPort}/`), { method: 'GET' });
    expect(JSON.parse((await client.readAnswer(response)).toString())).toEqual({ ok: true });
  });

  it('does not follow a redirect, so a redirect to a refused address connects nowhere', async () => {
    const err = await failure(client.request(new URL(`http://127.0.0.2:${redirectPort}/`), { method: 'GET' }));
    expect(err.message).toBe(OUTGOING_MESSAGES.failed);
    expect(err.internal).toMatch(/answered 302/);
    expect(recorder.connections).toBe(0);
    // The same address asked for directly is refused by the policy.
    expect((await failure(client.request(new URL(`http://127.0.0.1:${recorderPort}/x`), { method: 'GET' }))).reason).toBe('refused');
    expect(recorder.connections).toBe(0);
  });

  // The tests below wait out deadlines; they run side by side, so their waits overlap. Each keeps
  // its own servers' timing and the client's deadlines.
  it.concurrent('waits past the idle deadline for an answer that comes only after the body was processed', async ({ expect }) => {
    const { server, port: slowPort } = await httpServer('127.0.0.2', (req, res) => {
      req.resume();
      req.on('end', () => setTimeout(() => res.writeHead(200).end('{"done":true}'), 2500));
    });
    try {
      const url = new URL(`http://127.0.0.2:${slowPort}/`);
      // Five idle windows after the body; well within the total deadline.
      const send = (answersAfterProcessing: boolean): ReturnType<OutgoingClient['request']> =>
        patient.request(url, { method: 'PUT', body: Readable.from([Buffer.from('<x/>')]), answersAfterProcessing });
      const [refused, answered] = await Promise.all([failure(send(false)), send(true).then((response) => patient.readAnswer(response))]);
      expect(refused.internal).toMatch(/Headers Timeout/i);
      expect(answered.toString()).toBe('{"done":true}');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it.concurrent('gives one text whatever answers at the address', async ({ expect }) => {
    const urls = {
      closed: `http://127.0.0.1:${closedPort}/`,
      hangup: `http://127.0.0.1:${hangupPort}/`,
      notHttp: `http://127.0.0.1:${garbagePort}/`,
      teapot: `http://127.0.0.1:${teapotPort}/`,
      problem: `http://127.0.0.1:${problemPort}/`,
      silent: `http://127.0.0.1:${silentPort}/`,
      tls: `https://127.0.0.1:${teapotPort}/`,
      unresolvable: 'http://no-such-host.invalid/',
    };
    const texts = new Map<string, string>();
    const internals = new Map<string, string>();
    const failures = await Promise.all(
      Object.entries(urls).map(async ([name, url]) => [name, await failure(loopback.request(new URL(`${url}?token=xpu_query_secret`), { method: 'GET', headers: { authorization: 'Bearer header_secret' } }))] as const),
    );
    for (const [name, err] of failures) {
      // The details for the debug log name neither the query nor the credentials.
      expect(err.internal).not.toMatch(/secret/);
      texts.set(name, `${err.reason}: ${err.message}`);
      internals.set(name, err.internal);
    }
    expect(new Set(texts.values())).toEqual(new Set([`failed: ${OUTGOING_MESSAGES.failed}`]));
    // What happened is kept for the debug log, and differs.
    expect(internals.get('closed')).toMatch(/ECONNREFUSED/);
    expect(internals.get('teapot')).toMatch(/answered 418/);
    expect(OUTGOING_MESSAGES.failed).not.toMatch(/teapot|token already used|418|401|ECONNREFUSED/);
  });

  it.concurrent('cuts off an answer that trickles, after one idle window', async ({ expect }) => {
    // The patient client: on a loaded machine the idle check may come late, never the total deadline first.
    const response = await patient.request(new URL(`http://127.0.0.1:${tricklePort}/`), { method: 'GET' });
    const err = await failure(patient.readAnswer(response, 1024 * 1024));
    expect(err.message).toBe(OUTGOING_MESSAGES.failed);
    expect(err.internal).toMatch(/fewer than 1024 bytes in 500 ms/);
  });

  it.concurrent('cuts off an answer that keeps coming, at the total deadline', async ({ expect }) => {
    const response = await loopback.request(new URL(`http://127.0.0.1:${steadyPort}/`), { method: 'GET' });
    const err = await failure(loopback.readAnswer(response, 64 * 1024 * 1024));
    expect(err.message).toBe(OUTGOING_MESSAGES.failed);
    expect(err.internal).toMatch(/within 1500 ms/);
  });

  it.concurrent('does not count a window in which xporta held the answer back', async ({ expect }) => {
    const response = await patient.request(new URL(`http://127.0.0.1:${endlessPort}/`), { method: 'GET' });
    let failed: unknown;
    response.body.on('error', (err) => (failed = err));
    // Nobody reads for two idle windows: backpressure pauses the source, which is not its fault.
    await new Promise((r) => setTimeout(r, 1200));
    expect(failed).toBeUndefined();
    expect(response.body.destroyed).toBe(false);
    response.body.destroy();
  });

  it.concurrent('stops reading an endless answer at the byte limit', async ({ expect }) => {
    const response = await loopback.request(new URL(`http://127.0.0.1:${endlessPort}/`), { method: 'GET' });
    const err = await failure(loopback.readAnswer(response, 100_000));
    expect(err.internal).toMatch(/over 100000 bytes/);
  });
});
