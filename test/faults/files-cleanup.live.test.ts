/**
 * The Prosody file store after an import that died while staging (SIGKILL of a real child
 * process): reopening the store deletes the staged temporaries and scratch files, and the
 * account is as it was. A full disk while staging is a 507 problem, with nothing left behind.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProsodyFilesBackend } from '../../src/storage/prosody-files/backend.js';
import { openStorage } from '../../src/storage/open.js';
import { loadConfig } from '../../src/config/config.js';
import { exportUserDocument, importUserDocument, selectKinds } from '../../src/transfer/account-transfer.js';
import type { DocumentEvent } from '../../src/records/model.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { accountDocument } from '../support/documents.js';
import { clearSpool, spoolDirectory } from '../../src/core/spool.js';
import { importDoc, startService } from '../support/service.js';
import { REPO_ROOT, supportFile } from '../support/paths.js';

const root = REPO_ROOT;
const ref = { host: 'localhost', user: 'alice' };

function listAll(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (e) {
      // The importing child makes and removes its snapshot directories while this walks.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

const leftovers = (dir: string): string[] => listAll(dir).filter((f) => f.includes('~xporta-') || f.includes('.xporta-scratch-') || f.includes('.xporta-journal-'));

async function exported(storage: Parameters<typeof exportUserDocument>[0]): Promise<DocumentEvent[]> {
  const out: DocumentEvent[] = [];
  for await (const e of exportUserDocument(storage, ref, selectKinds())) out.push(e);
  return out;
}

describe('Prosody file store: cleanup after a killed import', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-files-cleanup-'));
  const data = join(dir, 'data');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('kill -9 while staging, then opening the store again, leaves no temporary file and the account unchanged', async () => {
    const first = new ProsodyFilesBackend({ path: data, hosts: { localhost: { passwordHash: 'SHA-1' } } });
    const small = accountDocument({ host: 'localhost', user: 'alice', password: 'old', archiveCount: 5 });
    await importUserDocument(first, ref, readDocument(Readable.from([Buffer.from(small)])), { mode: 'replace', dryRun: false, include: selectKinds(), createAccount: true });
    const before = await exported(first);
    await first.close();

    const child = spawn(join(root, 'node_modules', '.bin', 'vite-node'), [supportFile('files-import-child.ts'), data, '150000'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    // Wait until both a staged archive file of some size and a scratch file exist.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const files = leftovers(data);
      const staged = files.find((f) => f.includes('~xporta-') && f.includes('archive'));
      if (staged && files.some((f) => f.includes('.xporta-scratch-')) && (statSync(join(data, staged), { throwIfNoEntry: false })?.size ?? 0) > 1_000_000) break;
      if (Date.now() > deadline) throw new Error(`the child never staged: ${stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    await exited;
    const left = leftovers(data);
    expect(left.some((f) => f.includes('~xporta-'))).toBe(true);
    expect(left.some((f) => f.includes('.xporta-scratch-'))).toBe(true);

    // What the service does at start (openStorage recovers a files store).
    const config = loadConfig({ env: { XPORTA_DATA_DIR: dir, XPORTA_STORAGE: JSON.stringify({ type: 'prosody-files', path: data }) }, cwd: dir });
    const reopened = await openStorage(config);
    expect(leftovers(data)).toEqual([]);
    expect(await exported(reopened)).toEqual(before);
    await reopened.close();
  }, 180_000);
});

describe('the upload spool', () => {
  it('is emptied at start of what a killed run left there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xporta-spool-'));
    mkdirSync(spoolDirectory(dir));
    writeFileSync(join(spoolDirectory(dir), 'user-req-1.xml'), '<partial');
    expect(await clearSpool(dir)).toBe(1);
    expect(readdirSync(spoolDirectory(dir))).toEqual([]);
    expect(await clearSpool(join(dir, 'nowhere'))).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('Prosody file store: a full disk', () => {
  it('ENOSPC while staging answers 507, and nothing is left behind', async () => {
    const service = await startService({ type: 'prosody-files', path: 'store' });
    try {
      // The service's files backend, with a fault that fails staging as a full disk does.
      const storage = (service.app as unknown as { ctx: { storage: ProsodyFilesBackend } }).ctx.storage;
      (storage as unknown as { options: { faults?: object } }).options.faults = {
        beforeStage: () => {
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 });
        },
      };
      const res = await importDoc(service.app, 'alice@localhost', accountDocument({ host: 'localhost', user: 'alice', password: 'pw', archiveCount: 3 }));
      expect(res.status, res.body).toBe(507);
      expect(JSON.parse(res.body)).toMatchObject({ type: 'urn:xporta:problem:insufficient-storage', status: 507 });
      expect(existsSync(join(service.dir, 'store')) ? leftovers(join(service.dir, 'store')) : []).toEqual([]);
    } finally {
      await service.close();
    }
  });
});

/** Whether this process may mount a tmpfs (root in a container that allows it): mounts one and unmounts it. */
function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(join(tmpdir(), 'xporta-mount-probe-'));
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]).status === 0;
  if (ok) spawnSync('umount', [probe]);
  rmSync(probe, { recursive: true, force: true });
  return ok;
}

describe.skipIf(!canMountTmpfs())('Prosody file store on a real 1 MiB tmpfs', () => {
  const mountPoint = mkdtempSync(join(tmpdir(), 'xporta-full-'));
  beforeAll(() => {
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint]).status).toBe(0);
  });
  afterAll(() => {
    spawnSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  it('an import larger than the free space answers 507; the store is unchanged and holds no temporary', async () => {
    const store = join(mountPoint, 'data');
    mkdirSync(store);
    const service = await startService({ type: 'prosody-files', path: store });
    try {
      const small = accountDocument({ host: 'localhost', user: 'alice', password: 'pw', archiveCount: 3 });
      expect((await importDoc(service.app, 'alice@localhost', small)).status).toBe(200);
      const before = listAll(store).map((f) => [f, statSync(join(store, f)).size]);
      const big = accountDocument({ host: 'localhost', user: 'alice', password: 'pw', archiveCount: 10_000 });
      const res = await importDoc(service.app, 'alice@localhost', big);
      expect(res.status, res.body).toBe(507);
      expect(JSON.parse(res.body)).toMatchObject({ type: 'urn:xporta:problem:insufficient-storage' });
      expect(listAll(store).map((f) => [f, statSync(join(store, f)).size])).toEqual(before);
      expect(leftovers(store)).toEqual([]);
    } finally {
      await service.close();
    }
  }, 60_000);
});
