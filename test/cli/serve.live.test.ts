/**
 * The service as an operator runs it: the built CLI in a child process, the embedded default
 * store in a fresh directory, signals and exit codes.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountDocument } from '../support/documents.js';
import { freePort } from '../support/ports.js';
import { REPO_ROOT } from '../support/paths.js';

const root = REPO_ROOT;
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
    running = start(['serve'], dir, { XPORTA_LISTEN__PORT: String(port), XPORTA_LOG_LEVEL: 'info' });
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

  it('handed the generated operator token over in a 0600 file, not on its output, and stored its hash', () => {
    const file = join(dir, 'data', 'operator-token.txt');
    expect(running.output()).toContain(file);
    const token = readFileSync(file, 'utf8').trim();
    expect(token).toMatch(/^xpt_[A-Za-z0-9_-]{43}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(running.output()).not.toContain(token);
    const stored = readFileSync(join(dir, 'data', 'operator-token.json'), 'utf8');
    expect(stored).not.toContain(token);
    expect(stored).toMatch(/"sha256": "[0-9a-f]{64}"/);
  });

  it('created its files private (0600), the SQLite store included', () => {
    for (const name of ['prosody.sqlite', 'xporta-state.sqlite', 'operator-token.json', 'audit.log']) {
      expect([name, statSync(join(dir, 'data', name)).mode & 0o777]).toEqual([name, 0o600]);
    }
  });

  it('logged a start-up summary with token names, not values', async () => {
    await waitForHealth(port, running);
    const started = running
      .output()
      .split('\n')
      .find((line) => line.includes('xporta started'));
    expect(started).toBeDefined();
    expect(JSON.parse(started ?? '{}')).toMatchObject({ version: expect.any(String), backend: 'prosody-sql', driver: 'sqlite', hosts: ['localhost'], tokens: ['generated'] });
  });

  it('logs SIGHUP and keeps serving', async () => {
    await waitForHealth(port, running);
    running.child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 300));
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    expect(res.status).toBe(200);
    expect(running.output()).toContain('configuration reloaded');
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

describe('xporta serve and SIGHUP', () => {
  it('reloads the config file\'s tokens, and keeps the running config when the file is broken', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xporta-cli-hup-'));
    const port = await freePort();
    const configPath = join(dir, 'config.json');
    const withToken = (name: string, token: string): string =>
      JSON.stringify({ listen: { port }, logLevel: 'info', auth: { tokens: [{ name, sha256: createHash('sha256').update(token).digest('hex'), scopes: ['admin'], hosts: ['*'] }] } });
    writeFileSync(configPath, withToken('first', 'first-token-value-0123456789'));
    const running = start(['serve', '--config', configPath], dir);
    const list = async (token: string): Promise<number> => (await fetch(`http://127.0.0.1:${port}/v1/tokens`, { headers: { authorization: `Bearer ${token}` } })).status;
    const waitFor = async (text: string, after: number): Promise<void> => {
      for (let i = 0; i < 100 && !running.output().slice(after).includes(text); i++) await new Promise((r) => setTimeout(r, 50));
      expect(running.output().slice(after)).toContain(text);
    };
    try {
      await waitForHealth(port, running);
      expect(await list('first-token-value-0123456789')).toBe(200);
      writeFileSync(configPath, withToken('second', 'second-token-value-0123456789'));
      let mark = running.output().length;
      running.child.kill('SIGHUP');
      await waitFor('configuration reloaded', mark);
      expect(await list('second-token-value-0123456789')).toBe(200);
      expect(await list('first-token-value-0123456789')).toBe(401);

      writeFileSync(configPath, '{ not json');
      mark = running.output().length;
      running.child.kill('SIGHUP');
      await waitFor('configuration not reloaded', mark);
      expect(await list('second-token-value-0123456789')).toBe(200);
    } finally {
      running.child.kill('SIGTERM');
      await running.exited;
      rmSync(dir, { recursive: true, force: true });
    }
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

describe('xporta export / import / token', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-cli-data-'));
  const env = { XPORTA_AUTH__USER_TOKEN_SECRET: 's'.repeat(40), XPORTA_LOG_LEVEL: 'warn' };
  const run = (args: string[], input?: string) =>
    spawnSync(process.execPath, [cli, ...args], { cwd: dir, env: { PATH: process.env.PATH, ...env }, input, encoding: 'utf8' });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('imports a file into a new account and exports the same data to stdout', () => {
    writeFileSync(join(dir, 'alice.xml'), accountDocument({ host: 'localhost', user: 'alice', password: 'pw' }));
    const missing = run(['import', 'alice@localhost', 'alice.xml']);
    expect(missing.status).toBe(67);
    expect(missing.stderr).toContain('--create-account');
    const imported = run(['import', 'alice@localhost', 'alice.xml', '--create-account']);
    expect(imported.status).toBe(0);
    expect(JSON.parse(imported.stdout)).toMatchObject({ user: 'alice@localhost', created: true, counts: { archive: 3 } });
    const exported = run(['export', 'alice@localhost', '--include', 'archive,vcard']);
    expect(exported.status).toBe(0);
    expect(exported.stdout).toMatch(/^<\?xml version='1.0' encoding='UTF-8'\?>/);
    expect(exported.stdout.match(/<result /g)).toHaveLength(3);
    expect(exported.stdout).not.toContain('jabber:iq:roster');
  });

  it('reads standard input and reports bad XML with its position and exit code 65', () => {
    const res = run(['import', 'alice@localhost', '-'], "<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='localhost'><user name='alice'></host>");
    expect(res.status).toBe(65);
    expect(res.stderr).toMatch(/line 2/);
  });

  it('exports a whole host', () => {
    const res = run(['export', '--host', 'localhost', '--include', 'roster']);
    expect(res.status).toBe(0);
    expect(res.stdout).toContain("<user name='alice'");
  });

  it('mints a user token the running service accepts for that account only', async () => {
    const minted = run(['token', 'alice@localhost', '--scopes', 'export', '--ttl', '600']);
    expect(minted.status).toBe(0);
    const token = minted.stdout.trim();
    const port = await freePort();
    const service = start(['serve'], dir, { ...env, XPORTA_LISTEN__PORT: String(port) });
    try {
      await waitForHealth(port, service);
      const own = await fetch(`http://127.0.0.1:${port}/v1/users/alice%40localhost/export`, { headers: { authorization: `Bearer ${token}` } });
      expect(own.status).toBe(200);
      expect(await own.text()).toContain("<user name='alice'");
      const other = await fetch(`http://127.0.0.1:${port}/v1/users/bob%40localhost/export`, { headers: { authorization: `Bearer ${token}` } });
      expect(other.status).toBe(403);
    } finally {
      service.child.kill('SIGTERM');
      await service.exited;
    }
  });

  it('refuses a token lifetime over auth.userTokenMaxTtlSeconds as a usage error (64), minting nothing', () => {
    const refused = run(['token', 'alice@localhost', '--scopes', 'export', '--ttl', '7200']);
    expect(refused.status).toBe(64);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/ttlSeconds must be between 1 and 3600/);
  });

  it('audits its own actions in the same log as the service, naming the local user', () => {
    const lines = readFileSync(join(dir, 'data', 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; outcome: string; actor: { kind: string }; account?: string; host?: string });
    const cliLines = lines.filter((l) => l.actor.kind === 'cli').map((l) => `${l.action} ${l.outcome} ${l.account ?? l.host ?? ''}`);
    expect(cliLines).toEqual(
      expect.arrayContaining(['import ok alice@localhost', 'export ok alice@localhost', 'host-export ok localhost', 'user-token-mint ok alice@localhost']),
    );
    expect(statSync(join(dir, 'data', 'audit.log')).mode & 0o777).toBe(0o600);
  });

  it('makes an operator token with the config entry that accepts it (--print-entry)', () => {
    const res = run(['token', '--operator', '--name', 'panel', '--print-entry']);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/"sha256": "[0-9a-f]{64}"/);
  });

  it('refuses a bogus scope or host with exit 64 and stores nothing', () => {
    const bogus = run(['token', '--operator', '--scopes', 'bogus']);
    expect(bogus.status).toBe(64);
    expect(bogus.stderr).toContain('unknown scope "bogus"');
    const host = run(['token', '--operator', '--hosts', 'elsewhere.test']);
    expect(host.status).toBe(64);
    expect(JSON.parse(run(['token', 'list']).stdout)).toEqual({ tokens: [] });
  });

  it('creates, lists, rotates and revokes store tokens that a running service honours without a restart', async () => {
    const port = await freePort();
    const service = start(['serve'], dir, { ...env, XPORTA_LISTEN__PORT: String(port) });
    const exportAlice = (token: string) => fetch(`http://127.0.0.1:${port}/v1/users/alice%40localhost/export`, { headers: { authorization: `Bearer ${token}` } });
    try {
      await waitForHealth(port, service);
      const created = run(['token', '--operator', '--name', 'panel', '--scopes', 'export', '--hosts', 'localhost']);
      expect(created.status).toBe(0);
      const token = created.stdout.trim();
      expect((await exportAlice(token)).status).toBe(200);
      const listed = JSON.parse(run(['token', 'list']).stdout) as { tokens: { id: string; name: string }[] };
      expect(listed.tokens).toEqual([expect.objectContaining({ name: 'panel', scopes: ['export'], hosts: ['localhost'], source: 'store' })]);
      expect(JSON.stringify(listed)).not.toContain(token);
      const id = listed.tokens[0]?.id ?? '';
      const rotated = run(['token', 'rotate', id]);
      expect(rotated.status).toBe(0);
      const renewed = rotated.stdout.trim();
      expect((await exportAlice(token)).status).toBe(401);
      expect((await exportAlice(renewed)).status).toBe(200);
      expect(run(['token', 'revoke', id]).status).toBe(0);
      expect((await exportAlice(renewed)).status).toBe(401);
      expect(run(['token', 'revoke', 'nope']).status).toBe(64);
    } finally {
      service.child.kill('SIGTERM');
      await service.exited;
    }
  });
});
