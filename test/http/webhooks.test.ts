/**
 * Job completion callbacks against a real receiver on loopback: signed (HMAC-SHA256 over
 * "timestamp.body"), and retried with backoff when the receiver first answers 500.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountDocument } from '../support/documents.js';
import { startService, TOKEN, type TestService } from '../support/service.js';

const SECRET = 'w'.repeat(40);

interface Received {
  readonly at: number;
  readonly signature: string;
  readonly body: string;
}

function hostDocument(users: number): string {
  const parts = Array.from({ length: users }, (_, i) => {
    const d = accountDocument({ host: 'localhost', user: `w${i}`, password: 'pw', archiveCount: 5 });
    return d.slice(d.indexOf('<user '), d.lastIndexOf('</user>') + '</user>'.length);
  });
  return `<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='localhost'>\n${parts.join('\n')}\n</host>\n</server-data>\n`;
}

/** The receiver's side: the check the README shows. */
function verifies(header: string, body: string, secret: string, toleranceSeconds = 300): boolean {
  const fields = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(fields.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds || fields.v1 === undefined) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  const given = Buffer.from(fields.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

describe('job completion webhooks', () => {
  let service: TestService;
  let receiver: Server;
  let port: number;
  const received: Received[] = [];
  let failFirst = 1;

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        received.push({ at: Date.now(), signature: String(req.headers['x-xporta-signature'] ?? ''), body });
        res.statusCode = failFirst-- > 0 ? 500 : 204;
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    port = (receiver.address() as AddressInfo).port;
    service = await startService(undefined, {
      XPORTA_WEBHOOKS__SECRET: SECRET,
      XPORTA_WEBHOOKS__INITIAL_BACKOFF_MS: '200',
      XPORTA_OUTGOING__ALLOW: JSON.stringify(['127.0.0.1/32']),
    });
  });

  afterAll(async () => {
    await service?.close();
    await new Promise((r) => receiver.close(r));
  });

  it('posts a signed completion that verifies, after retrying a 500', async () => {
    const callbackUrl = `http://127.0.0.1:${port}/hooks/xporta`;
    const res = await service.app.inject({
      method: 'PUT',
      url: `/v1/hosts/localhost/import?async=true&createAccount=true&callbackUrl=${encodeURIComponent(callbackUrl)}`,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/xml' },
      payload: hostDocument(2),
    });
    expect(res.statusCode, res.body).toBe(202);
    const { id } = res.json<{ id: string }>();
    const deadline = Date.now() + 30_000;
    while (received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(received).toHaveLength(2);
    // The second came after the backoff, and each attempt is signed.
    expect(received[1]!.at - received[0]!.at).toBeGreaterThanOrEqual(150);
    for (const r of received) expect(verifies(r.signature, r.body, SECRET)).toBe(true);
    expect(verifies(received[1]!.signature, received[1]!.body, 'another secret')).toBe(false);
    expect(verifies(received[1]!.signature, received[1]!.body.replace('succeeded', 'failed'), SECRET)).toBe(false);
    const payload = JSON.parse(received[1]!.body) as { event: string; job: { id: string; state: string; progress: { done: number } } };
    expect(payload).toMatchObject({ event: 'job.finished', job: { id, state: 'succeeded', progress: { done: 2 } } });
    // Delivered: no further attempts.
    await new Promise((r) => setTimeout(r, 500));
    expect(received).toHaveLength(2);
  }, 60_000);

  it('refuses a callbackUrl without async=true or that is not http(s)', async () => {
    const put = (query: string) =>
      service.app.inject({
        method: 'PUT',
        url: `/v1/hosts/localhost/import?${query}`,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/xml' },
        payload: hostDocument(1),
      });
    expect((await put(`callbackUrl=${encodeURIComponent('http://127.0.0.1:1/x')}`)).statusCode).toBe(400);
    expect((await put(`async=true&callbackUrl=${encodeURIComponent('ftp://127.0.0.1/x')}`)).statusCode).toBe(400);
  });
});
