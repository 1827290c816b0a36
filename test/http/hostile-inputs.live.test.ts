/**
 * Hostile documents and upstreams, each run in a child process (test/support/xporta-child.mjs,
 * on the built dist/) whose peak RSS is asserted against a documented bound:
 *
 * - the node bomb: 1.2 kB of gzip holding 262,144 empty elements in one private-XML record,
 *   imported as a dry run, stops at `limits.maxElementNodes` with 413;
 * - a move whose import link answers 200 and then never stops sending: the answer is read up to
 *   `outgoing.maxAnswerBytes`, then 502;
 * - an import-from whose source never ends (a valid archive that goes on forever): cut off by
 *   the total deadline with 502; one that trickles a byte at a time: cut off after an idle
 *   window. Either way the import slot and the account are free again, and while it runs the
 *   import counts in `xporta_imports_in_progress`.
 *
 * The upstream servers run here, on loopback; the child allows 127.0.0.0/8 for them.
 */
import { spawnSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountDocument } from '../support/documents.js';
import { REPO_ROOT, supportFile } from '../support/paths.js';

const root = REPO_ROOT;
const child = supportFile('xporta-child.mjs');
const TOKEN = 'hostile-inputs-operator-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const MB = 1024 * 1024;

/**
 * Peak RSS of the child process (about 90 MB after start-up and a small import). Without the
 * limits these cases reach hundreds of MB (the node bomb) to many GB (the endless answers);
 * with them, even a record just under `limits.maxElementNodes` stays under this.
 */
const PEAK_BOUND = 250 * MB;

interface ChildRequest {
  method: 'GET' | 'PUT' | 'POST';
  url: string;
  headers?: Record<string, string>;
  payload?: string;
  payloadBase64?: string;
  measureFromHere?: boolean;
  probe?: { afterMs: number; method: 'GET'; url: string; headers?: Record<string, string> };
}

interface ChildResult {
  idleRss: number;
  peakRss: number;
  results: { status: number; body: string; ms: number; slotsInUse: number; probe?: { status: number; body: string } }[];
}

/** Runs the child asynchronously: the upstream servers live in this process and must keep serving. */
async function runChild(dir: string, env: Record<string, string>, requests: ChildRequest[]): Promise<ChildResult> {
  const spec = JSON.stringify({
    dir,
    env: {
      XPORTA_DATA_DIR: dir,
      XPORTA_LOG_LEVEL: 'silent',
      XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'ops', sha256: createHash('sha256').update(TOKEN).digest('hex'), scopes: ['export', 'import', 'admin'] }]),
      XPORTA_OUTGOING__ALLOW: JSON.stringify(['127.0.0.0/8']),
      ...env,
    },
    requests,
  });
  const proc = spawn(process.execPath, ['--expose-gc', child, spec], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(proc, 'exit')) as [number | null];
  expect(code, err.slice(-3000)).toBe(0);
  const line = out.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as ChildResult;
}

function report(name: string, result: ChildResult): number {
  const growth = result.peakRss - result.idleRss;
  console.log(
    `${name}: idle RSS ${(result.idleRss / MB).toFixed(0)} MB, peak ${(result.peakRss / MB).toFixed(0)} MB, growth ${(growth / MB).toFixed(0)} MB, ` +
      `answers ${result.results.map((r) => `${r.status} in ${r.ms} ms`).join(', ')}`,
  );
  return result.peakRss;
}

const aliceDoc = accountDocument({ host: 'localhost', user: 'alice', password: 'secret' });
/** Creates alice first, so that the process is warm when measuring starts. */
const createAlice: ChildRequest = {
  method: 'PUT',
  url: '/v1/users/alice%40localhost/import?createAccount=true',
  headers: { ...AUTH, 'content-type': 'application/xml' },
  payload: aliceDoc,
};

describe('hostile documents and upstreams stay within a memory bound', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-hostile-'));
  const servers: Server[] = [];
  let endlessAnswer = '';
  let endlessDocument = '';
  let trickle = '';

  async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
    const server = createServer(handler);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** Writes `next()` for as long as the peer reads, honouring backpressure. */
  function endless(res: ServerResponse, first: string, next: (i: number) => string): void {
    res.write(first);
    let i = 0;
    const more = (): void => {
      while (!res.destroyed && res.write(next(i++)));
    };
    res.on('drain', more);
    more();
  }

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'http', 'server.js'))) spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
    endlessAnswer = await serve((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        endless(res, '{"user":"a@b.example","mode":"merge","warnings":["', () => 'x'.repeat(16 * 1024));
      });
    });
    endlessDocument = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'application/xml' });
      endless(
        res,
        "<?xml version='1.0'?><server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='alice'><archive xmlns='urn:xmpp:pie:0#mam'>",
        (i) =>
          Array.from(
            { length: 50 },
            (_, j) =>
              `<result xmlns='urn:xmpp:mam:2' id='m${i}-${j}'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/>` +
              `<message xmlns='jabber:client' from='alice@localhost/a' to='bob@example.net' type='chat' id='i${i}-${j}'><body>never ending ${i} ${j}</body></message></forwarded></result>`,
          ).join(''),
      );
    });
    trickle = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/xml' });
      const doc = "<?xml version='1.0'?><server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='alice'>";
      let i = 0;
      const timer = setInterval(() => res.write(doc[i++ % doc.length] ?? ' '), 200);
      res.on('close', () => clearInterval(timer));
    });
  }, 300_000);

  afterAll(async () => {
    for (const server of servers) server.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    rmSync(dir, { recursive: true, force: true });
  });

  /** One private-XML record of `n` empty elements, gzipped: 262,144 of them take 1.2 kB. */
  function nodeBomb(n: number): Buffer {
    return gzipSync(
      `<?xml version='1.0'?><server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='alice'>` +
        `<query xmlns='jabber:iq:private'><bomb xmlns='urn:example:bomb'>${'<a/>'.repeat(n)}</bomb></query></user></host></server-data>`,
      { level: 9 },
    );
  }

  function dryRunOf(gzipped: Buffer): ChildRequest {
    return {
      method: 'PUT',
      url: '/v1/users/alice%40localhost/import?dryRun=true',
      headers: { ...AUTH, 'content-type': 'application/xml', 'content-encoding': 'gzip' },
      payloadBase64: gzipped.toString('base64'),
      measureFromHere: true,
    };
  }

  it('the 1.2 kB node bomb stops at maxElementNodes with 413', async () => {
    const bomb = nodeBomb(262_144);
    expect(bomb.length).toBeLessThan(1300);
    const result = await runChild(join(dir, 'bomb'), {}, [createAlice, dryRunOf(bomb)]);
    const answer = result.results[1];
    expect(answer?.status, answer?.body).toBe(413);
    expect(JSON.parse(answer?.body ?? '{}')).toMatchObject({ type: 'urn:xporta:problem:xml-too-many-nodes', line: 1 });
    expect(report('node bomb', result)).toBeLessThan(PEAK_BOUND);
  }, 120_000);

  it('a record just under the default maxElementNodes is imported (dry run) within the same bound', async () => {
    const result = await runChild(join(dir, 'under'), {}, [createAlice, dryRunOf(nodeBomb(49_990))]);
    const answer = result.results[1];
    expect(answer?.status, answer?.body).toBe(200);
    expect(JSON.parse(answer?.body ?? '{}')).toMatchObject({ dryRun: true, counts: { private: 1 } });
    expect(report('49,990 elements in one record', result)).toBeLessThan(PEAK_BOUND);
  }, 120_000);

  it('a move whose import link answers without end: read up to maxAnswerBytes, then 502', async () => {
    const result = await runChild(join(dir, 'moved'), {}, [
      createAlice,
      {
        method: 'POST',
        url: '/v1/users/alice%40localhost/moved',
        headers: { ...AUTH, 'content-type': 'application/json' },
        payload: JSON.stringify({ newJid: 'alice@new.example', importUrl: `${endlessAnswer}/v1/users/alice%40new.example/import?token=xpu_secret` }),
        measureFromHere: true,
      },
    ]);
    const answer = result.results[1];
    expect(answer?.status, answer?.body).toBe(502);
    expect(answer?.body).not.toMatch(/xpu_secret|xxxx/);
    expect(report('moved, endless answer', result)).toBeLessThan(PEAK_BOUND);
  }, 120_000);

  it('an import-from whose source never ends is cut off at the total deadline, and frees its slot', async () => {
    const result = await runChild(join(dir, 'endless'), { XPORTA_OUTGOING__TOTAL_TIMEOUT_MS: '4000' }, [
      createAlice,
      {
        method: 'POST',
        url: '/v1/users/alice%40localhost/import-from',
        headers: { ...AUTH, 'content-type': 'application/json' },
        payload: JSON.stringify({ url: `${endlessDocument}/export`, dryRun: true }),
        measureFromHere: true,
        probe: { afterMs: 1000, method: 'GET', url: '/metrics', headers: AUTH },
      },
      { method: 'GET', url: '/metrics', headers: AUTH },
    ]);
    const [, answer, metrics] = result.results;
    expect(answer?.status, answer?.body).toBe(502);
    expect(JSON.parse(answer?.body ?? '{}')).toMatchObject({ type: 'urn:xporta:problem:upstream-failed' });
    expect(answer?.ms).toBeGreaterThanOrEqual(3500);
    expect(answer?.probe?.body).toMatch(/^xporta_imports_in_progress 1$/m);
    expect(answer?.slotsInUse).toBe(0);
    expect(metrics?.body).toMatch(/^xporta_imports_in_progress 0$/m);
    expect(report('import-from, endless source', result)).toBeLessThan(PEAK_BOUND);
  }, 120_000);

  it('an import-from whose source trickles is cut off after an idle window, and frees its slot', async () => {
    // The total deadline stays at its default of an hour: the idle rule alone stops this.
    const result = await runChild(join(dir, 'trickle'), { XPORTA_OUTGOING__IDLE_TIMEOUT_MS: '1000' }, [
      createAlice,
      {
        method: 'POST',
        url: '/v1/users/alice%40localhost/import-from',
        headers: { ...AUTH, 'content-type': 'application/json' },
        payload: JSON.stringify({ url: `${trickle}/export` }),
        measureFromHere: true,
      },
      {
        method: 'PUT',
        url: '/v1/users/alice%40localhost/import?dryRun=true',
        headers: { ...AUTH, 'content-type': 'application/xml' },
        payload: aliceDoc,
      },
    ]);
    const [, answer, after] = result.results;
    expect(answer?.status, answer?.body).toBe(502);
    expect(answer?.ms).toBeGreaterThanOrEqual(1000);
    expect(answer?.ms).toBeLessThan(30_000);
    expect(answer?.slotsInUse).toBe(0);
    // The account lock is free again too: an import into the same account goes through.
    expect(after?.status, after?.body).toBe(200);
    expect(report('import-from, trickling source', result)).toBeLessThan(PEAK_BOUND);
  }, 120_000);
});
