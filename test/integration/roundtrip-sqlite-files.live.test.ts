/**
 * Prosody A (SQL on SQLite) → xporta export → import into Prosody B (internal files) → export:
 * the two documents hold the same records, and Prosody B serves the account to a real client.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { StorageBackend } from '../../src/storage/backend.js';
import { ProsodyFilesBackend } from '../../src/storage/prosody-files/backend.js';
import { ProsodySqlBackend } from '../../src/storage/prosody-sql/backend.js';
import { exportUserDocument, importUserDocument } from '../../src/transfer/account-transfer.js';
import { DATA_KINDS, type DocumentEvent } from '../../src/records/model.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { writeDocument } from '../../src/xep0227/writer.js';
import { populateAccount, type PopulateSummary } from '../support/populate.js';
import { describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { getRoster, loginAs, queryMam } from '../support/xmpp-client.js';

const ALICE = { host: 'localhost', user: 'alice' };
const ALL = new Set(DATA_KINDS);
const hosts = { localhost: { passwordHash: 'SHA-1' as const } };

async function exportText(storage: StorageBackend): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of writeDocument(exportUserDocument(storage, ALICE, ALL))) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function events(text: string): Promise<DocumentEvent[]> {
  const out: DocumentEvent[] = [];
  for await (const e of readDocument(Readable.from([Buffer.from(text)]))) out.push(e);
  return out;
}

/** Records in a canonical order: the format does not order nodes, items or private elements. */
function canonical(list: DocumentEvent[]): string[] {
  return list.map((e) => JSON.stringify(e)).sort();
}

describeWithProsody('round trip: Prosody on SQLite → Prosody on internal files', () => {
  const rootB = mkdtempSync(join(tmpdir(), 'xporta-files-b-'));
  let prosodyA: ProsodyHandle;
  let prosodyB: ProsodyHandle | undefined;
  let summary: PopulateSummary;
  let first: string;

  beforeAll(async () => {
    prosodyA = await startProsody({ storage: 'sqlite' });
    summary = await populateAccount(prosodyA, { messages: 50 });
    const storageA = new ProsodySqlBackend({ dialect: 'sqlite', database: join(prosodyA.rootDir, 'data', 'prosody.sqlite'), hosts });
    first = await exportText(storageA);
    await storageA.close();
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled([prosodyA?.stop(), prosodyB?.stop()]);
    rmSync(rootB, { recursive: true, force: true });
  });

  it('imports into Prosody B’s files, and B serves the account to a real client', async () => {
    // B's data directory is created by a first start; the import runs while B is stopped.
    prosodyB = await startProsody({ storage: 'internal', dir: rootB });
    await prosodyB.stop();
    // A data directory B has not written to cannot tell its generation: configured, as an operator would.
    const storageB = new ProsodyFilesBackend({ path: join(rootB, 'data'), hosts, serverVersion: prosodyA.version });
    const report = await importUserDocument(storageB, ALICE, readDocument(Readable.from([Buffer.from(first)])), {
      mode: 'replace',
      dryRun: false,
      include: ALL,
      createAccount: true,
    });
    expect(report.created).toBe(true);
    expect(report.warnings).toEqual([]);
    expect(report.skipped).toEqual([]);

    prosodyB = await startProsody({ storage: 'internal', dir: rootB });
    const alice = await loginAs(prosodyB, 'alice', summary.alice.password);
    try {
      expect((await getRoster(alice)).map((i) => i.jid).sort()).toEqual(summary.roster.items.map((i) => i.jid));
      expect((await queryMam(alice, { max: 50 })).map((m) => m.id)).toEqual(summary.archive.messages.map((m) => m.id));
    } finally {
      await alice.close();
    }
    await prosodyB.stop();
  });

  it('exports the same records from Prosody B', async () => {
    // A data directory B has not written to cannot tell its generation: configured, as an operator would.
    const storageB = new ProsodyFilesBackend({ path: join(rootB, 'data'), hosts, serverVersion: prosodyA.version });
    const second = await exportText(storageB);
    const [a, b] = [await events(first), await events(second)];
    expect(b.filter((e) => e.kind === 'archive').length).toBe(summary.archive.messages.length);
    expect(canonical(b)).toEqual(canonical(a));
  });
});
