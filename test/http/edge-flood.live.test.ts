/**
 * The HTTP edge under a flood: the service in its own process (test/support/serve-app.ts) answers
 * 300 MB bodies before reading them while 200 clients trickle, and its RSS stays bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountDocument } from '../support/documents.js';
import { ALL, EXPORT_ONLY, PROBLEM, auth, envFor, xml } from '../support/http-edge.js';
import { REPO_ROOT, supportFile } from '../support/paths.js';
import { floodRequest, trickleRequest, type RawAnswer } from '../support/raw-http.js';

/** Current and peak resident set of a process, MiB. */
function rssOf(pid: number): { now: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]) / 1024;
  return { now: kb('VmRSS'), peak: kb('VmHWM') };
}

describe('hostile bodies against the service in its own process', () => {
  const root = REPO_ROOT;
  const dir = mkdtempSync(join(tmpdir(), 'xporta-edge-flood-'));
  const BODY = 300 * 1024 * 1024;
  let service: ChildProcess;
  let port: number;

  beforeAll(async () => {
    service = spawn(process.execPath, [join(root, 'node_modules/vite-node/vite-node.mjs'), supportFile('serve-app.ts')], {
      cwd: dir,
      env: {
        PATH: process.env.PATH,
        ...envFor(dir, {
          XPORTA_LIMITS__HEADERS_TIMEOUT_MS: '1500',
          XPORTA_LIMITS__BODY_TIMEOUT_MS: '2000',
        }),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    port = await new Promise<number>((resolvePort, reject) => {
      let out = '';
      service.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const match = /listening (\d+)/.exec(out);
        if (match) resolvePort(Number(match[1]));
      });
      service.once('exit', (code) => reject(new Error(`the service exited with ${code}: ${out}`)));
    });
    const created = await fetch(`http://127.0.0.1:${port}/v1/users/alice%40localhost/import?createAccount=true`, {
      method: 'PUT',
      headers: { ...auth(ALL), ...xml },
      body: accountDocument({ host: 'localhost', user: 'alice', password: 'pw' }),
    });
    expect(created.status).toBe(200);
  }, 60_000);

  afterAll(() => {
    service.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 300 MB bodies 401/403/404/413 before reading them while 200 clients trickle, and serves others', async () => {
    const exportAlice = async (): Promise<string> => {
      const res = await fetch(`http://127.0.0.1:${port}/v1/users/alice%40localhost/export`, { headers: auth(ALL) });
      expect(res.status).toBe(200);
      return res.text();
    };
    const before = await exportAlice();
    const { now: idle, peak: peakBefore } = rssOf(service.pid!);

    const head = (method: string, path: string, headers: string): string =>
      `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Content-Length: ${BODY}\r\n\r\n`;
    const json = 'Content-Type: application/json\r\n';
    const floods: { expected: number; answer: Promise<RawAnswer> }[] = [];
    for (let i = 0; i < 20; i++) {
      const [expected, request] = (
        [
          [401, head('POST', '/v1/users/alice%40localhost/tokens', json)],
          [401, head('PUT', '/v1/users/alice%40localhost/import?createAccount=true', 'Content-Type: application/xml\r\n')],
          [404, head('POST', '/v1/no/such/route', 'Content-Type: text/plain\r\n')],
          [403, head('PUT', '/v1/users/alice%40localhost/import', `Authorization: Bearer ${EXPORT_ONLY}\r\nContent-Type: multipart/form-data; boundary=x\r\n`)],
          [403, head('POST', '/v1/users/alice%40localhost/tokens', `Authorization: Bearer ${EXPORT_ONLY}\r\n${json}`)],
        ] as const
      )[i % 5]!;
      floods.push({ expected, answer: floodRequest(port, request, BODY) });
    }
    // An authorised caller's 300 MB JSON body is refused on its announced length alone.
    for (let i = 0; i < 4; i++) {
      floods.push({ expected: 413, answer: floodRequest(port, head('POST', '/v1/users/alice%40localhost/tokens', `Authorization: Bearer ${ALL}\r\n${json}`), BODY) });
    }
    // 100 clients trickling their headers, 100 authorised ones trickling a JSON body.
    const trickling: Promise<RawAnswer>[] = [];
    for (let i = 0; i < 100; i++) {
      trickling.push(trickleRequest(port, 'POST /v1/users/alice%40localhost/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ', '', 'a'.repeat(1000), 200));
      trickling.push(
        trickleRequest(port, head('POST', '/v1/users/alice%40localhost/tokens', `Authorization: Bearer ${ALL}\r\n${json}`).replace(String(BODY), '1000'), '{', ' '.repeat(999), 200),
      );
    }

    const served = await fetch(`http://127.0.0.1:${port}/v1/users/alice%40localhost/export`, { headers: auth(ALL) });
    expect(served.status).toBe(200);
    expect(await served.text()).toContain("<user name='alice'>");

    for (const { expected, answer } of floods) {
      const a = await answer;
      expect(a.status, a.body).toBe(expected);
      expect(a.headers['content-type']).toContain(PROBLEM);
      expect(a.closedByServer).toBe(true);
      // Headers plus what the kernel's socket buffers hold: nowhere near the 300 MB announced.
      expect(a.bytesSentBeforeAnswer).toBeLessThan(BODY / 10);
    }
    const trickled = await Promise.all(trickling);
    for (const a of trickled) {
      expect(a.closedByServer).toBe(true);
      expect(a.elapsedMs).toBeLessThan(8000);
    }
    expect(trickled.filter((a) => a.status === 408 && a.headers['content-type']?.includes(PROBLEM))).toHaveLength(200);

    const rss = rssOf(service.pid!);
    console.log(
      `flood: idle RSS ${idle.toFixed(0)} MiB (peak before ${peakBefore.toFixed(0)}), peak after ${rss.peak.toFixed(0)} MiB; ` +
        `most sent before an answer ${(Math.max(...(await Promise.all(floods.map((f) => f.answer))).map((a) => a.bytesSentBeforeAnswer)) / 1e6).toFixed(1)} MB`,
    );
    expect(rss.peak - idle).toBeLessThan(50);
    expect(await exportAlice()).toBe(before);
  }, 30_000);
});
