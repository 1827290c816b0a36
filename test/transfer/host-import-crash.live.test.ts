/**
 * A host import killed mid-way (SIGKILL) leaves whole groups of accounts committed and nothing of
 * the group in progress; running the same import again (merge) completes the host without
 * duplicating anything. See README, "Host imports".
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { syntheticHost } from '../../bench/host-synthetic.js';
import { ProsodySqlBackend } from '../../src/storage/prosody-sql/backend.js';
import { selectKinds } from '../../src/transfer/account-transfer.js';
import { DEFAULT_HOST_BATCHING, importHostDocument } from '../../src/transfer/host-transfer.js';
import { REPO_ROOT as root, supportFile } from '../support/paths.js';

const ACCOUNTS = 4000;

function counts(database: string): { accounts: number; messages: number } {
  const db = new Database(database, { readonly: true, timeout: 5000 });
  try {
    const accounts = db.prepare(`SELECT COUNT(*) AS n FROM prosody WHERE store = 'accounts' AND key = 'salt'`).get() as { n: number } | undefined;
    const messages = db.prepare(`SELECT COUNT(*) AS n FROM prosodyarchive WHERE store = 'archive'`).get() as { n: number } | undefined;
    return { accounts: accounts?.n ?? 0, messages: messages?.n ?? 0 };
  } catch {
    return { accounts: 0, messages: 0 };
  } finally {
    db.close();
  }
}

describe('a host import killed mid-way', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-host-crash-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps whole groups only, and the same import run again completes the host', async () => {
    const database = join(dir, 'prosody.sqlite');
    const child = spawn(join(root, 'node_modules', '.bin', 'vite-node'), [supportFile('host-import-child.ts'), database, String(ACCOUNTS)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    // Killed once the first group is in, before the last.
    const deadline = Date.now() + 240_000;
    for (;;) {
      const done = Number(output.trim().split('\n').filter((l) => /^\d+$/.test(l)).pop() ?? 0);
      if (done >= DEFAULT_HOST_BATCHING.accounts + 100) break;
      if (output.includes('done') || Date.now() > deadline) throw new Error(`the child did not stop mid-way: ${output.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    await exited;

    const left = counts(database);
    expect(left.accounts).toBeGreaterThan(0);
    expect(left.accounts).toBeLessThan(ACCOUNTS);
    expect(left.accounts % DEFAULT_HOST_BATCHING.accounts).toBe(0);
    // Each account kept is whole: 3 archived messages each, none of a half-applied account.
    expect(left.messages).toBe(left.accounts * 3);

    // The resume: the same import again, in merge mode.
    const backend = new ProsodySqlBackend({ dialect: 'sqlite', database, hosts: { localhost: { passwordHash: 'SHA-1' } }, serverVersion: '0.12' });
    try {
      const result = await importHostDocument(backend, 'localhost', syntheticHost(ACCOUNTS), {
        mode: 'merge',
        dryRun: false,
        include: selectKinds(),
        createAccount: true,
        sizes: new Array<number>(ACCOUNTS).fill(8),
      });
      expect(result.progress).toMatchObject({ done: ACCOUNTS, failed: 0 });
    } finally {
      await backend.close();
    }
    expect(counts(database)).toEqual({ accounts: ACCOUNTS, messages: ACCOUNTS * 3 });
  }, 300_000);
});
