/**
 * Durable jobs: the service (the built CLI's `serve`, a child process) is killed with SIGKILL in
 * the middle of a host import job and started again on the same dataDir. The job then reads
 * `interrupted`, every account is either whole or absent, and the import can be submitted again.
 * A running job is cancelled through the API; `xporta jobs` lists and shows jobs from the state file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import { accountDocument } from '../support/documents.js';
import { freePort } from '../support/ports.js';
import { REPO_ROOT } from '../support/paths.js';

const root = REPO_ROOT;
const cli = join(root, 'dist', 'cli.js');
const TOKEN = 'operator-durable-jobs-secret';
const USERS = 30;
const MESSAGES = 3000;

beforeAll(() => {
  if (!existsSync(cli)) {
    const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('build failed');
  }
}, 120_000);

function hostDocument(): string {
  const users = Array.from({ length: USERS }, (_, i) => {
    const d = accountDocument({ host: 'localhost', user: `u${i}`, password: 'pw', archiveCount: MESSAGES });
    return d.slice(d.indexOf('<user '), d.lastIndexOf('</user>') + '</user>'.length);
  });
  return `<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='localhost'>\n${users.join('\n')}\n</host>\n</server-data>\n`;
}

interface Job {
  id: string;
  state: string;
  progress: { done: number; failed: number; total?: number; records: number; bytes: number; totalBytes?: number; estimate?: number };
  error?: string;
}

describe('host import jobs across a killed service', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-jobs-'));
  const env = {
    PATH: process.env.PATH ?? '',
    XPORTA_DATA_DIR: dir,
    XPORTA_LOG_LEVEL: 'warn',
    XPORTA_HOSTS: JSON.stringify({ localhost: { passwordHash: 'SHA-1' } }),
    XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'all', sha256: sha256Hex(TOKEN), scopes: ['export', 'import', 'admin'], hosts: ['*'] }]),
  };
  const doc = hostDocument();
  let port: number;
  let child: ChildProcess | undefined;

  async function startServe(): Promise<void> {
    port = await freePort();
    const started = spawn(process.execPath, [cli, 'serve'], { cwd: dir, env: { ...env, XPORTA_LISTEN__PORT: String(port) }, stdio: 'ignore' });
    child = started;
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/livez`)).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error('the service did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function stopServe(signal: NodeJS.Signals): Promise<void> {
    const running = child;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((r) => running.once('exit', r));
    running.kill(signal);
    await exited;
  }

  const api = (method: string, path: string, body?: string): Promise<Response> =>
    fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/xml' } : {}) },
      ...(body !== undefined ? { body } : {}),
    });

  async function job(id: string): Promise<Job> {
    return (await (await api('GET', `/v1/jobs/${id}`)).json()) as Job;
  }

  async function untilJob(id: string, check: (j: Job) => boolean): Promise<Job> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const j = await job(id);
      if (check(j)) return j;
      if (Date.now() > deadline) throw new Error(`job never got there: ${JSON.stringify(j)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Messages in each account's export; undefined for an absent account. */
  async function archiveCounts(): Promise<(number | undefined)[]> {
    const counts: (number | undefined)[] = [];
    for (let i = 0; i < USERS; i++) {
      const res = await api('GET', `/v1/users/u${i}%40localhost/export?include=archive`);
      counts.push(res.status === 404 ? undefined : (await res.text()).match(/<result /g)?.length ?? 0);
    }
    return counts;
  }

  beforeAll(() => startServe(), 60_000);
  afterAll(async () => {
    await stopServe('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('a job killed half-way reads interrupted after a restart, leaves no account half-written, and can be submitted again', async () => {
    const accepted = await api('PUT', '/v1/hosts/localhost/import?async=true&createAccount=true&mode=replace', doc);
    expect(accepted.status).toBe(202);
    const { id } = (await accepted.json()) as Job;
    expect(accepted.headers.get('location')).toBe(`/v1/jobs/${id}`);
    const midway = await untilJob(id, (j) => j.progress.done >= 3);
    expect(midway.state).toBe('running');
    expect(midway.progress.records).toBeGreaterThan(0);
    expect(midway.progress.bytes).toBeGreaterThan(0);
    expect(midway.progress.totalBytes).toBe(Buffer.byteLength(doc));
    expect(midway.progress.total).toBe(USERS);
    await stopServe('SIGKILL');

    await startServe();
    const after = await job(id);
    expect(after.state).toBe('interrupted');
    expect(after.error).toMatch(/submit the job again/);
    const listed = (await (await api('GET', '/v1/jobs')).json()) as { jobs: Job[] };
    expect(listed.jobs.map((j) => `${j.id} ${j.state}`)).toContain(`${id} interrupted`);
    // Each account whole or absent; at least the ones reported done are there.
    const counts = await archiveCounts();
    for (const n of counts) expect([undefined, MESSAGES]).toContain(n);
    expect(counts.filter((n) => n === MESSAGES).length).toBeGreaterThanOrEqual(midway.progress.done);
    expect(counts.filter((n) => n === undefined).length).toBeGreaterThan(0);

    const again = await api('PUT', '/v1/hosts/localhost/import?createAccount=true&mode=replace', doc);
    expect(again.status).toBe(200);
    expect((await archiveCounts()).every((n) => n === MESSAGES)).toBe(true);

    const shown = spawnSync(process.execPath, [cli, 'jobs', 'show', id], { cwd: dir, env, encoding: 'utf8' });
    expect(shown.status, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id, state: 'interrupted' });
    const list = spawnSync(process.execPath, [cli, 'jobs', 'list'], { cwd: dir, env, encoding: 'utf8' });
    expect(list.status, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as Job[]).some((j) => j.id === id)).toBe(true);
    expect(spawnSync(process.execPath, [cli, 'jobs', 'show', 'nope'], { cwd: dir, env, encoding: 'utf8' }).status).toBe(67);
  }, 300_000);

  it('DELETE /v1/jobs/{id} cancels a running job between accounts', async () => {
    const accepted = await api('PUT', '/v1/hosts/localhost/import?async=true&createAccount=true&mode=replace', doc);
    const { id } = (await accepted.json()) as Job;
    await untilJob(id, (j) => j.progress.done >= 1);
    const cancel = await api('DELETE', `/v1/jobs/${id}`);
    expect(cancel.status).toBe(202);
    const ended = await untilJob(id, (j) => j.state !== 'running');
    expect(ended.state).toBe('cancelled');
    expect(ended.progress.done).toBeLessThan(USERS);
    expect((await api('DELETE', `/v1/jobs/${id}`)).status).toBe(409);
  }, 300_000);
});
