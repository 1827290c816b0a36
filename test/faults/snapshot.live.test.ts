/**
 * Exports read one snapshot: a replace import that commits while an export is half-way through
 * does not show in it (whole old account), and the next export shows all of it (whole new
 * account). The import runs through a second backend on the same storage, as another xporta
 * process or a CLI import would, so no in-process lock keeps the two apart. Prosody's SQL
 * storage, ejabberd's SQL storage (PostgreSQL, MariaDB) and Prosody's files.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import type { StorageBackend } from '../../src/storage/backend.js';
import { openStorage } from '../../src/storage/open.js';
import { exportUserDocument, importUserDocument, selectKinds } from '../../src/transfer/account-transfer.js';
import type { DocumentEvent } from '../../src/records/model.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { accountDocument } from '../support/documents.js';
import { isCI } from '../support/prosody.js';
import { EJABBERD_SQL_DIR, loadSchema } from '../support/ejabberd.js';
import { createTestDatabase, dropTestDatabase, sqlServer, sqlServerAvailable, type SqlServerKind } from '../../bench/sql-databases.js';

const ref = { host: 'localhost', user: 'alice' };
const ALL = selectKinds();

function doc(fn: string, bobName: string, archiveCount: number): string {
  return accountDocument({ host: 'localhost', user: 'alice', password: 'pw', archiveCount })
    .replace('<FN>Alice Example</FN>', `<FN>${fn}</FN>`)
    .replace("name='Bob'", `name='${bobName}'`);
}

async function apply(storage: StorageBackend, text: string): Promise<void> {
  await importUserDocument(storage, ref, readDocument(Readable.from([Buffer.from(text)])), { mode: 'replace', dryRun: false, include: ALL, createAccount: true });
}

interface Summary {
  fn: string | undefined;
  bob: string | undefined;
  archive: number;
}

function summary(events: DocumentEvent[]): Summary {
  let fn: string | undefined;
  let bob: string | undefined;
  let archive = 0;
  for (const e of events) {
    if (e.kind === 'vcard') fn = e.vcard.children.flatMap((c) => (typeof c !== 'string' && c.name === 'FN' ? c.children : [])).join('');
    if (e.kind === 'roster') bob = e.items.find((i) => i.jid === 'bob@example.net')?.name;
    if (e.kind === 'archive') archive++;
  }
  return { fn, bob, archive };
}

async function collectAll(events: AsyncIterable<DocumentEvent>): Promise<DocumentEvent[]> {
  const out: DocumentEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

const skipWithout = async (kind: SqlServerKind): Promise<boolean> => !isCI && !(await sqlServerAvailable(kind));

interface Target {
  readonly name: string;
  readonly skip: boolean;
  /** The storage settings, and how to drop what was made. */
  setup(dir: string): Promise<{ storage: Record<string, unknown>; drop: () => Promise<void> }>;
}

const sqlTarget = (kind: SqlServerKind, server: 'prosody' | 'ejabberd'): Target => ({
  name: `${server === 'prosody' ? 'Prosody' : 'ejabberd'} ${kind === 'postgres' ? 'PostgreSQL' : 'MariaDB'}`,
  skip: false,
  async setup(): Promise<{ storage: Record<string, unknown>; drop: () => Promise<void> }> {
    const database = await createTestDatabase(kind);
    const s = sqlServer(kind);
    const connection = { driver: kind, host: s.host, port: s.port, username: s.username, ...(s.password ? { password: s.password } : {}), database };
    if (server === 'ejabberd') await loadSchema(kind, database, s, true, EJABBERD_SQL_DIR);
    return {
      storage: server === 'prosody' ? { type: 'prosody-sql', ...connection } : { type: 'ejabberd-sql', schema: 'new', ...connection },
      drop: () => dropTestDatabase(kind, database),
    };
  },
});

const targets: Target[] = [
  {
    name: 'Prosody SQLite (journalMode wal)',
    skip: false,
    setup: (dir) => Promise.resolve({ storage: { type: 'prosody-sql', driver: 'sqlite', database: join(dir, 'prosody.sqlite'), journalMode: 'wal' }, drop: () => Promise.resolve() }),
  },
  {
    name: 'Prosody files',
    skip: false,
    setup: (dir) => {
      mkdirSync(join(dir, 'data'));
      return Promise.resolve({ storage: { type: 'prosody-files', path: join(dir, 'data') }, drop: () => Promise.resolve() });
    },
  },
];
const postgresSkip = await skipWithout('postgres');
const mysqlSkip = await skipWithout('mysql');
for (const server of ['prosody', 'ejabberd'] as const) {
  targets.push({ ...sqlTarget('postgres', server), skip: postgresSkip }, { ...sqlTarget('mysql', server), skip: mysqlSkip });
}

for (const target of targets) {
  describe.skipIf(target.skip)(`snapshot exports on ${target.name}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'xporta-snapshot-'));
    let exporter: StorageBackend;
    let importer: StorageBackend;
    let drop: () => Promise<void> = () => Promise.resolve();

    beforeAll(async () => {
      const made = await target.setup(dir);
      drop = made.drop;
      const config = loadConfig({
        env: { XPORTA_DATA_DIR: dir, XPORTA_HOSTS: JSON.stringify({ localhost: { passwordHash: 'SHA-1' } }), XPORTA_STORAGE: JSON.stringify(made.storage) },
        cwd: dir,
      });
      exporter = await openStorage(config);
      importer = await openStorage(config);
    }, 60_000);
    afterAll(async () => {
      await exporter?.close();
      await importer?.close();
      await drop();
      rmSync(dir, { recursive: true, force: true });
    });

    // Paused after the account (before any store is read) and in the middle of the archive.
    for (const pauseAt of ['user', 'archive'] as const) {
      it(`an import committed during an export (paused at the first ${pauseAt} event) is wholly absent from it, and wholly in the next`, async () => {
        await apply(importer, doc('Old Name', 'Old Bob', 2000));
        const iterator = exportUserDocument(exporter, ref, ALL)[Symbol.asyncIterator]();
        const head: DocumentEvent[] = [];
        while (!head.some((e) => e.kind === pauseAt)) {
          const next = await iterator.next();
          if (next.done) throw new Error('export ended early');
          head.push(next.value);
        }
        await apply(importer, doc('New Name', 'New Bob', 3000));
        const tail = await collectAll({ [Symbol.asyncIterator]: () => iterator });
        expect(summary([...head, ...tail])).toEqual({ fn: 'Old Name', bob: 'Old Bob', archive: 2000 });
        expect(summary(await collectAll(exportUserDocument(exporter, ref, ALL)))).toEqual({ fn: 'New Name', bob: 'New Bob', archive: 3000 });
      }, 120_000);
    }

    it('an export that stops early ends its snapshot (the next import and export work)', async () => {
      const iterator = exportUserDocument(exporter, ref, ALL)[Symbol.asyncIterator]();
      await iterator.next();
      await iterator.next();
      await iterator.return?.();
      await apply(importer, doc('Third', 'Third Bob', 10));
      expect(summary(await collectAll(exportUserDocument(exporter, ref, ALL)))).toEqual({ fn: 'Third', bob: 'Third Bob', archive: 10 });
      // The files' snapshots are directories of links beside the stores, removed when the export ends (without waiting for it).
      if (target.name === 'Prosody files') {
        await vi.waitFor(() => expect(readdirSync(join(dir, 'data')).filter((f) => f.startsWith('.xporta-snapshot-'))).toEqual([]));
      }
    }, 60_000);
  });
}
