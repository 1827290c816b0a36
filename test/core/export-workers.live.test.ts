/**
 * Streamed exports on worker threads over the networked databases: each worker opens its own
 * connection from the storage configuration and reads one snapshot, as an export on the
 * service's thread does. Prosody's SQL storage and ejabberd's, on PostgreSQL and MariaDB.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { accountExportStream } from '../../src/core/export-stream.js';
import type { ExportWorkers } from '../../src/core/export-workers.js';
import { Metrics } from '../../src/core/metrics.js';
import type { StorageBackend } from '../../src/storage/backend.js';
import { openStorage } from '../../src/storage/open.js';
import { selectKinds } from '../../src/transfer/account-transfer.js';
import { createTestDatabase, dropTestDatabase, sqlServer, sqlServerAvailable, type SqlServerKind } from '../../bench/sql-databases.js';
import { EJABBERD_SQL_DIR, loadSchema } from '../support/ejabberd.js';
import { aliceDocument as doc, applyAlice as apply, bytesOf, testExportWorkers } from '../support/export-workers.js';
import { isCI } from '../support/prosody.js';

const ref = { host: 'localhost', user: 'alice' };
const ALL = selectKinds();

for (const kind of ['postgres', 'mysql'] as const satisfies readonly SqlServerKind[]) {
  const skip = !isCI && !(await sqlServerAvailable(kind));
  for (const server of ['prosody', 'ejabberd'] as const) {
    describe.skipIf(skip)(`exports on worker threads, ${server} ${kind}`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'xporta-export-workers-live-'));
      let storage: StorageBackend;
      let workers: ExportWorkers;
      let database = '';

      beforeAll(async () => {
        database = await createTestDatabase(kind);
        const s = sqlServer(kind);
        const connection = { driver: kind, host: s.host, port: s.port, username: s.username, ...(s.password ? { password: s.password } : {}), database };
        if (server === 'ejabberd') await loadSchema(kind, database, s, true, EJABBERD_SQL_DIR);
        const config = loadConfig({
          env: {
            XPORTA_DATA_DIR: dir,
            XPORTA_HOSTS: JSON.stringify({ localhost: { passwordHash: 'SHA-1' } }),
            XPORTA_STORAGE: JSON.stringify(server === 'prosody' ? { type: 'prosody-sql', ...connection } : { type: 'ejabberd-sql', schema: 'new', ...connection }),
          },
          cwd: dir,
        });
        storage = await openStorage(config);
        await apply(storage, doc('Old Name', 2000));
        workers = testExportWorkers(config, 1);
      }, 120_000);

      afterAll(async () => {
        await workers?.close();
        await storage?.close();
        if (database) await dropTestDatabase(kind, database);
        rmSync(dir, { recursive: true, force: true });
      });

      it('gives the bytes of an export on the service thread, and one snapshot while an import commits meanwhile', async () => {
        const signal = new AbortController().signal;
        const expected = await bytesOf(accountExportStream({ storage, metrics: new Metrics() }, ref, ALL, { gzip: false, signal }));
        const paused = workers.export(ref, ALL, { metrics: new Metrics() });
        await new Promise((resolve) => paused.once('readable', resolve));
        await apply(storage, doc('New Name', 1000));
        expect((await bytesOf(paused)).equals(expected)).toBe(true);
        const next = (await bytesOf(workers.export(ref, ALL, { metrics: new Metrics() }))).toString('utf8');
        expect(next).toContain('<FN>New Name</FN>');
        expect(next.match(/<result /g)?.length).toBe(1000);
      }, 120_000);
    });
  }
}
