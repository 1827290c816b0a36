/**
 * The CLI as an operator's shell sees it (the built CLI in child processes, the embedded SQLite
 * store): per-command help, gzip recognised by content (standard input too), --output and
 * --gzip, sysexits for a missing file, a quiet end when the reader of a pipe goes away, and the
 * progress line on a pseudo-terminal (util-linux `script`) but not in a pipe or with --quiet.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openStorage } from '../../src/storage/open.js';
import { isCI } from '../support/prosody.js';
import { accountDocument } from '../support/documents.js';
import { REPO_ROOT } from '../support/paths.js';

const root = REPO_ROOT;
const cli = join(root, 'dist', 'cli.js');
const MESSAGES = 20_000;

describe('the CLI at the edges', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-cli-ops-'));
  const env = { PATH: process.env.PATH, XPORTA_DATA_DIR: dir, XPORTA_LOG_LEVEL: 'silent' };
  const run = (args: string[], input?: Buffer | string) => spawnSync(process.execPath, [cli, ...args], { cwd: dir, env, ...(input !== undefined ? { input } : {}), maxBuffer: 1 << 28 });
  const doc = accountDocument({ host: 'localhost', user: 'alice', password: 'pw' });

  beforeAll(async () => {
    if (!existsSync(cli)) {
      const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
      if (build.status !== 0) throw new Error('build failed');
    }
    const config = loadConfig({ env: { XPORTA_DATA_DIR: dir }, cwd: dir });
    await (await openStorage(config)).close();
    // bob: enough archived messages that an export outgrows a pipe's buffer.
    const db = new Database(join(dir, 'prosody.sqlite'));
    db.prepare("INSERT INTO prosody (host, user, store, key, type, value) VALUES ('localhost', 'bob', 'accounts', 'password', 'string', 'pw')").run();
    const insert = db.prepare("INSERT INTO prosodyarchive (host, user, store, key, \"when\", \"with\", type, value) VALUES ('localhost', 'bob', 'archive', ?, ?, 'carol@example.net', 'xml', ?)");
    db.transaction(() => {
      for (let i = 0; i < MESSAGES; i++) insert.run(`k${i}`, 1_700_000_000 + i, `<message from='carol@example.net/x' to='bob@localhost' type='chat' id='m${i}'><body>message ${i} ${'x'.repeat(100)}</body></message>`);
    })();
    db.close();
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('answers --help per command, and `help COMMAND`', () => {
    const exportHelp = run(['export', '--help']);
    expect(exportHelp.status).toBe(0);
    expect(exportHelp.stdout.toString()).toMatch(/^usage: xporta export JID/);
    expect(exportHelp.stdout.toString()).toContain('--output FILE');
    const importHelp = run(['help', 'import']);
    expect(importHelp.status).toBe(0);
    expect(importHelp.stdout.toString()).toMatch(/^usage: xporta import JID FILE\|-/);
    for (const command of ['serve', 'token', 'config']) expect(run([command, '--help']).stdout.toString()).toMatch(new RegExp(`^usage: xporta ${command}`));
    expect(run(['--help']).stdout.toString()).toMatch(/^usage: xporta <command>/);
    expect(run(['frobnicate', '--help']).status).toBe(64);
  });

  it('exits 66 for a missing input file, 64 for --gzip outside export', () => {
    const missing = run(['import', 'alice@localhost', join(dir, 'nope.xml'), '--create-account']);
    expect(missing.status).toBe(66);
    expect(missing.stderr.toString()).toMatch(/^xporta: cannot read .*nope\.xml: ENOENT\n$/);
    expect(run(['import', 'alice@localhost', '-', '--gzip'], doc).status).toBe(64);
  });

  it('recognises gzip by content: on standard input and under any file name', () => {
    const fromStdin = run(['import', 'alice@localhost', '-', '--create-account'], gzipSync(doc));
    expect(fromStdin.stderr.toString()).toBe('');
    expect(fromStdin.status).toBe(0);
    expect(JSON.parse(fromStdin.stdout.toString())).toMatchObject({ created: true });
    const named = join(dir, 'alice.xml');
    writeFileSync(named, gzipSync(doc));
    expect(run(['import', 'alice@localhost', named, '--dry-run']).status).toBe(0);
    // Plain XML on standard input still works.
    expect(run(['import', 'alice@localhost', '-', '--dry-run'], doc).status).toBe(0);
  });

  it('--output writes a private file (whole or not at all) and --gzip compresses', () => {
    const plain = run(['export', 'bob@localhost']);
    expect(plain.status).toBe(0);
    const file = join(dir, 'bob.xml.gz');
    const written = run(['export', 'bob@localhost', '--output', file, '--gzip']);
    expect(written.status).toBe(0);
    expect(written.stdout.length).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(gunzipSync(readFileSync(file)).equals(plain.stdout)).toBe(true);
    const toStdout = run(['export', 'bob@localhost', '--gzip']);
    expect(gunzipSync(toStdout.stdout).equals(plain.stdout)).toBe(true);
    // A failed export leaves nothing under the asked name, nor a partial file.
    const failed = run(['export', 'nobody@localhost', '--output', join(dir, 'nobody.xml')]);
    expect(failed.status).toBe(67);
    expect(readdirSync(dir).filter((name) => name.includes('nobody'))).toEqual([]);
  });

  it('ends quietly with exit 0 when the reader of the pipe goes away (| head)', () => {
    const piped = spawnSync('bash', ['--norc', '--noprofile', '-c', `set -o pipefail; "${process.execPath}" "${cli}" export bob@localhost | head -c 100 >/dev/null; echo "status \${PIPESTATUS[0]}" >&2`], {
      cwd: dir,
      env,
    });
    const stderr = piped.stderr.toString();
    expect(stderr).toBe('status 0\n');
    expect(piped.status).toBe(0);
  });

  it('draws a progress line on a terminal, not in a pipe or with --quiet', () => {
    const scriptBinary = spawnSync('script', ['--version']);
    if (scriptBinary.error) {
      if (isCI) throw new Error('util-linux script is needed for the pseudo-terminal test');
      return;
    }
    const command = (extra: string): string => `"${process.execPath}" "${cli}" export bob@localhost --output "${join(dir, `tty${extra.length}.xml`)}" ${extra}`;
    const tty = spawnSync('script', ['-q', '-e', '-c', command(''), '/dev/null'], { cwd: dir, env: { ...env, TERM: 'dumb' } });
    expect(tty.status).toBe(0);
    const screen = tty.stdout.toString();
    expect(screen).toMatch(new RegExp(`exported: ${MESSAGES.toLocaleString('en')} records, ${MESSAGES.toLocaleString('en')} messages, [\\d.]+ MiB, [\\d,]+ records/s`));
    expect(screen).toContain('\r');
    const quiet = spawnSync('script', ['-q', '-e', '-c', command('--quiet'), '/dev/null'], { cwd: dir, env: { ...env, TERM: 'dumb' } });
    expect(quiet.status).toBe(0);
    expect(quiet.stdout.toString()).not.toContain('records');
    const importing = spawnSync('script', ['-q', '-e', '-c', `"${process.execPath}" "${cli}" import bob@localhost "${join(dir, 'tty0.xml')}" --dry-run`, '/dev/null'], { cwd: dir, env: { ...env, TERM: 'dumb' } });
    expect(importing.status).toBe(0);
    expect(importing.stdout.toString()).toMatch(new RegExp(`checked: ${MESSAGES.toLocaleString('en')} records, ${MESSAGES.toLocaleString('en')} messages, [\\d.]+ MiB`));
    const notTty = run(['import', 'alice@localhost', '-', '--dry-run'], doc);
    expect(notTty.stderr.toString()).toBe('');
  });
});
