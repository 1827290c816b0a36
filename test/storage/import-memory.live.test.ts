/**
 * An import must not hold the archive in memory: 100,000 messages go into each store through
 * the CLI in a process whose V8 heap is capped at 64 MB (the document is ~51 MB). Anything that
 * keeps per-message data alive, such as parser chunks pinned by sliced strings, fails here.
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeDocument } from '../../src/xep0227/writer.js';
import { BENCH_USER, syntheticAccount } from '../../bench/synthetic.js';
import { REPO_ROOT } from '../support/paths.js';

const root = REPO_ROOT;
const cli = join(root, 'dist', 'cli.js');
const MESSAGES = 100_000;

describe(`importing ${MESSAGES.toLocaleString('en')} messages with a 64 MB heap`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-import-memory-'));
  const doc = join(dir, 'account.xml');

  beforeAll(async () => {
    if (!existsSync(cli)) spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
    await pipeline(Readable.from(writeDocument(syntheticAccount(MESSAGES))), createWriteStream(doc));
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['Prosody SQL (SQLite)', {}],
    ['Prosody internal files', { XPORTA_STORAGE: JSON.stringify({ type: 'prosody-files', path: join(dir, 'files') }) }],
  ])('%s', (name, storageEnv) => {
    const run = spawnSync(process.execPath, ['--max-old-space-size=64', cli, 'import', `${BENCH_USER}@localhost`, doc, '--create-account'], {
      env: { PATH: process.env.PATH, XPORTA_DATA_DIR: join(dir, name.replace(/\W/g, '')), XPORTA_LOG_LEVEL: 'warn', ...storageEnv },
      encoding: 'utf8',
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(run.status, run.stderr.slice(-2000)).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ counts: { archive: MESSAGES } });
  }, 300_000);
});
