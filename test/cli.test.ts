/**
 * The service as an operator runs it: the built CLI in a child process, the embedded default
 * store in a fresh directory, signals and exit codes.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './support/ports.js';

const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist', 'cli.js');

beforeAll(() => {
  // `npm run check` builds before testing; a bare `npm test` may not have.
  if (!existsSync(cli)) {
    const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('build failed');
  }
}, 120_000);

interface Running {
  readonly child: ChildProcessWithoutNullStreams;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

function start(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Running {
  const child = spawn(process.execPath, [cli, ...args], {
    cwd,
    env: { PATH: process.env.PATH, ...env },
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  return { child, output: () => output, exited };
}

async function waitForHealth(port: number, running: Running): Promise<Response> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await fetch(`http://127.0.0.1:${port}/health`);
    } catch {
      if (Date.now() > deadline) throw new Error(`service did not answer; output:\n${running.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('xporta serve on the embedded default', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-cli-'));
  let running: Running;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    running = start(['serve'], dir, { XPORTA_LISTEN__PORT: String(port), XPORTA_LOG_LEVEL: 'warn' });
  });

  afterAll(() => {
    running.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers /health with 200 and a reachable SQLite store', async () => {
    const res = await waitForHealth(port, running);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: 'ok',
      storage: { backend: 'prosody-sql:sqlite', reachable: true },
      component: { enabled: false, connected: false },
    });
  });

  it('created the store with Prosody’s schema under ./data', () => {
    const db = new Database(join(dir, 'data', 'prosody.sqlite'), { readonly: true });
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").pluck().all();
    db.close();
    expect(tables).toEqual(expect.arrayContaining(['prosody', 'prosodyarchive']));
  });

  it('printed the generated operator token once and stored only its hash', () => {
    const match = /\n {2}(xpt_[A-Za-z0-9_-]{43})\n/.exec(running.output());
    expect(match).not.toBeNull();
    const stored = readFileSync(join(dir, 'data', 'operator-token.json'), 'utf8');
    expect(stored).not.toContain(match?.[1]);
    expect(stored).toMatch(/"sha256": "[0-9a-f]{64}"/);
  });

  it('answers unknown routes with problem+json', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/nope`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ type: 'urn:xporta:problem:not-found', status: 404 });
  });

  it('stops cleanly on SIGTERM', async () => {
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);
  });
});

describe('xporta with a bad configuration', () => {
  it('exits non-zero naming the field from a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xporta-cli-'));
    writeFileSync(join(dir, 'c.json'), JSON.stringify({ limits: { maxConcurrentImports: 0 } }));
    const running = start(['serve', '--config', join(dir, 'c.json')], dir);
    expect(await running.exited).toBe(78);
    expect(running.output()).toContain('config: limits.maxConcurrentImports: must be an integer from 1 to 1000 (got 0)');
    expect(existsSync(join(dir, 'data'))).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits non-zero naming the field from the environment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xporta-cli-'));
    const running = start(['serve'], dir, { XPORTA_LISTEN__PORT: 'abc' });
    expect(await running.exited).toBe(78);
    expect(running.output()).toContain('config: listen.port');
    rmSync(dir, { recursive: true, force: true });
  });
});
