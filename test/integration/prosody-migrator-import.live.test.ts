/**
 * What prosody-migrator (Prosody 0.12's mod_storage_xep0227) writes, from a Prosody with the
 * default `password_hash = "SHA-1"` and from one with `"SHA-256"`, imported through
 * `xporta import --host` and through HTTP (the user route for alice, the host route for the
 * others) into a fresh Prosody of the same hash. Every account logs in with its password, and
 * alice serves the source's roster, vCard, PEP items and archive count there.
 *
 * On the SHA-256 host the migrator labels the 32-byte SCRAM keys `SCRAM-SHA-1`: xporta takes them
 * for what their length says and warns. The 0.12 migrator has no offline store handler, so its
 * documents carry no offline messages.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runHostImport } from '../../src/cli/host-import.js';
import { loadConfig } from '../../src/config/config.js';
import type { ApplyReport } from '../../src/storage/backend.js';
import { PROSODY_MIGRATOR_BIN, runProsodyMigrator, type MigratorExportResult } from '../../bench/prosody-migrator.js';
import { expectServesSame, probeAccount, type ServedAccount } from '../support/account-probe.js';
import { populateAccount, type PopulateSummary } from '../support/populate.js';
import { requireBinary, skipWithoutProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { loginAs } from '../support/xmpp-client.js';
import { putXml, withXportaHttp } from '../support/xporta-http.js';

const PASSWORDS = { alice: 'alice secret ü', bob: 'correct horse', carol: 'carol-pw' } as const;
const LABEL_WARNING = 'credentials labelled SCRAM-SHA-1 have 32-byte keys: imported as SCRAM-SHA-256';

for (const passwordHash of ['SHA-1', 'SHA-256'] as const) {
  describe.skipIf(skipWithoutProsody() || !requireBinary(PROSODY_MIGRATOR_BIN))(`prosody-migrator on a ${passwordHash} host → xporta → Prosody`, () => {
    let work: string;
    let summary: PopulateSummary;
    let exported: MigratorExportResult;
    let sourceAlice: ServedAccount;
    let pepNodes: string[];

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'xporta-migrator-import-'));
      const sourceDir = join(work, 'source');
      const source = await startProsody({ passwordHash, dir: sourceDir });
      try {
        summary = await populateAccount(source, { messages: 4, passwords: PASSWORDS });
      } finally {
        await source.stop();
      }
      const sqlite = source.sql?.database;
      if (!sqlite) throw new Error('the rig Prosody has no SQLite database');
      exported = await runProsodyMigrator({ sqliteDatabase: sqlite, outputDir: join(work, 'export'), host: 'localhost' });
      // The source again, on the same database, to read what alice serves there.
      const again = await startProsody({ passwordHash, dir: sourceDir });
      try {
        pepNodes = summary.pep.map((n) => n.node);
        sourceAlice = await probeAccount(aliceOn(again), { pepNodes });
      } finally {
        await again.stop();
      }
      expect(sourceAlice.archiveCount).toBe(summary.archive.messages.length);
      expect(sourceAlice.offline).toHaveLength(summary.offline.length);
      expect(Object.values(sourceAlice.pep).every((items) => items.length > 0)).toBe(true);
    }, 180_000);

    afterAll(async () => {
      if (work) await rm(work, { recursive: true, force: true });
    });

    const aliceOn = (p: ProsodyHandle) => ({ service: p.service, domain: 'localhost', username: 'alice', password: PASSWORDS.alice });

    async function expectServedOn(target: ProsodyHandle): Promise<void> {
      // No offline store in the 0.12 migrator: nothing to deliver.
      expectServesSame(await probeAccount(aliceOn(target), { pepNodes }), sourceAlice, ['offline']);
      for (const user of ['bob', 'carol'] as const) await (await loginAs(target, user, PASSWORDS[user])).close();
    }

    function expectWarnings(report: ApplyReport): void {
      if (passwordHash === 'SHA-256') expect(report.warnings).toContain(LABEL_WARNING);
      else expect(report.warnings.filter((w) => w.startsWith('credentials'))).toEqual([]);
    }

    it('the documents hold alice with 20- or 32-byte keys under the SCRAM-SHA-1 label', async () => {
      expect(exported.files.map((f) => f.user)).toEqual(['alice', 'bob', 'carol']);
      const text = await readFile(exported.files[0]?.path ?? '', 'utf8');
      expect(text).toMatch(/mechanism=['"]SCRAM-SHA-1['"]/);
      const key = /<stored-key>([^<]*)</.exec(text)?.[1] ?? '';
      expect(Buffer.from(key, 'base64')).toHaveLength(passwordHash === 'SHA-256' ? 32 : 20);
    });

    it('xporta import --host: every account logs in; alice serves the source roster, vCard, PEP items and archive count', async () => {
      const target = await startProsody({ passwordHash, dir: join(work, 'cli') });
      try {
        const configPath = join(work, 'xporta-cli.json');
        await writeFile(
          configPath,
          JSON.stringify({
            dataDir: join(work, 'xporta-cli'),
            storage: { type: 'prosody-sql', driver: 'sqlite', database: target.sql?.database },
            hosts: { localhost: { passwordHash } },
            audit: { file: join(work, 'audit.log') },
          }),
        );
        const config = loadConfig({ configPath, env: {} });
        for (const file of exported.files) {
          const report = await runHostImport(config, { file: file.path, createAccount: true }, Readable.from([]));
          const user = report.hosts[0]?.users[0] as ApplyReport;
          expect(user.user).toBe(file.jid);
          expectWarnings(user);
        }
        await expectServedOn(target);
      } finally {
        await target.stop();
      }
    }, 120_000);

    it('HTTP (alice by PUT /v1/users/{jid}/import, the others by PUT /v1/hosts/{host}/import): the same', async () => {
      const target = await startProsody({ passwordHash, dir: join(work, 'http') });
      try {
        await withXportaHttp({ type: 'prosody-sql', driver: 'sqlite', database: target.sql?.database }, { localhost: { passwordHash } }, async (base, authorization) => {
          for (const file of exported.files) {
            const body = await readFile(file.path);
            if (file.user === 'alice') {
              const report = (await putXml(`${base}/v1/users/${file.jid}/import?createAccount=true`, authorization, body)) as ApplyReport;
              expect(report.user).toBe(file.jid);
              expectWarnings(report);
            } else {
              const report = (await putXml(`${base}/v1/hosts/localhost/import?createAccount=true`, authorization, body)) as { users: ApplyReport[] };
              expect(report.users.map((u) => u.user)).toEqual([file.jid]);
              expectWarnings(report.users[0] as ApplyReport);
            }
          }
        });
        await expectServedOn(target);
      } finally {
        await target.stop();
      }
    }, 120_000);
  });
}
