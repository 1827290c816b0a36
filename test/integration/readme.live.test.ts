/**
 * The README's curl session, run as written against `xporta serve` on the embedded default
 * (port 8227, a fresh ./data). Only the line where a reader pastes the printed token is filled in.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canConnect } from '../support/ports.js';
import { REPO_ROOT } from '../support/paths.js';

const root = REPO_ROOT;
const cli = join(root, 'dist', 'cli.js');

function curlSession(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const marker = readme.indexOf('<!-- curl-session');
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(marker));
  if (marker < 0 || !block?.[1]) throw new Error('README has no curl-session block');
  return block[1];
}

describe('the README curl session', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-readme-'));
  let output = '';
  let service: ReturnType<typeof spawn>;

  beforeAll(async () => {
    if (!existsSync(cli)) spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
    if (await canConnect(8227)) throw new Error('port 8227 is in use: the README session needs the default port');
    service = spawn(process.execPath, [cli, 'serve'], { cwd: dir, env: { PATH: process.env.PATH, XPORTA_LOG_LEVEL: 'warn' } });
    service.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    service.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    for (let i = 0; i < 200 && !(await canConnect(8227)); i++) await new Promise((r) => setTimeout(r, 50));
    cpSync(join(root, 'examples'), join(dir, 'examples'), { recursive: true });
  });

  afterAll(() => {
    service.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs as written and every step answers as the README says', () => {
    // Not a terminal here: the token was handed over in data/operator-token.txt, not printed.
    const tokenFile = join(dir, 'data', 'operator-token.txt');
    const token = /\n {2}(xpt_[A-Za-z0-9_-]+)\n/.exec(output)?.[1] ?? (existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined);
    expect(token, output).toBeDefined();
    const script = curlSession().replace(/^TOKEN=.*$/m, `TOKEN=${token}`);
    const run = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: dir, encoding: 'utf8' });
    expect(run.status, run.stderr + run.stdout).toBe(0);
    expect(run.stdout).toContain('"status":"ok"');
    expect(run.stdout).toContain('"dryRun":true');
    expect(run.stdout).toContain('"created":true');
    expect(run.stdout).toMatch(/"token":"xpu_/);
    expect(run.stdout).toContain('"type":"urn:xporta:problem:not-found"');
    expect(run.stdout).toMatch(/xporta_records_total\{direction="export",kind="archive"\} 3/);
    const exported = readFileSync(join(dir, 'alice-export.xml'), 'utf8');
    expect(exported).toContain("<user name='alice'>");
    expect(exported.match(/<result /g)).toHaveLength(3);
  });
});
