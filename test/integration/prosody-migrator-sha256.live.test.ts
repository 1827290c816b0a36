/**
 * prosody-migrator's export of a Prosody with `password_hash = "SHA-256"` labels the 32-byte
 * SCRAM keys `SCRAM-SHA-1`. xporta takes them for what their length says, warns, and the
 * accounts log in to another SHA-256 Prosody with their passwords.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runHostImport } from '../../src/cli/host-import.js';
import { loadConfig } from '../../src/config/config.js';
import type { ApplyReport } from '../../src/storage/backend.js';
import { createUser, describeWithProsody, requireBinary, startProsody } from '../support/prosody.js';
import { PROSODY_MIGRATOR_BIN, runProsodyMigrator, type MigratorExportResult } from '../../bench/prosody-migrator.js';
import { loginAs } from '../support/xmpp-client.js';

const PASSWORDS: Readonly<Record<string, string>> = { alice: 'alice secret ü', bob: 'correct horse' };

describeWithProsody('prosody-migrator on a SHA-256 host → xporta import --host → Prosody', () => {
  let work: string;
  let exported: MigratorExportResult;

  beforeAll(async () => {
    requireBinary(PROSODY_MIGRATOR_BIN);
    work = await mkdtemp(join(tmpdir(), 'xporta-migrator-sha256-'));
    const source = await startProsody({ passwordHash: 'SHA-256', dir: join(work, 'source') });
    for (const [user, password] of Object.entries(PASSWORDS)) await createUser(source, user, 'localhost', password);
    const sqlite = source.sql?.database;
    if (!sqlite) throw new Error('the rig Prosody has no SQLite database');
    await source.stop();
    exported = await runProsodyMigrator({ sqliteDatabase: sqlite, outputDir: join(work, 'export'), host: 'localhost', stores: ['accounts', 'roster'] });
  }, 120_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('imports every account with a warning about the label; the passwords log in', async () => {
    expect(exported.files.map((f) => f.user)).toEqual(['alice', 'bob']);
    // What the issue reports: 32-byte keys under the SHA-1 label.
    expect(readFileSync(exported.files[0]?.path ?? '', 'utf8')).toMatch(/mechanism=['"]SCRAM-SHA-1['"]/);
    const target = await startProsody({ passwordHash: 'SHA-256', dir: join(work, 'target') });
    try {
      const configPath = join(work, 'xporta.json');
      await writeFile(
        configPath,
        JSON.stringify({
          dataDir: join(work, 'xporta'),
          storage: { type: 'prosody-sql', driver: 'sqlite', database: target.sql?.database },
          hosts: { localhost: { passwordHash: 'SHA-256' } },
          audit: { file: join(work, 'audit.log') },
        }),
      );
      const config = loadConfig({ configPath, env: {} });
      for (const file of exported.files) {
        const report = await runHostImport(config, { file: file.path, createAccount: true }, Readable.from([]));
        const user = report.hosts[0]?.users[0] as ApplyReport;
        expect(user.user).toBe(file.jid);
        expect(user.warnings).toContain('credentials labelled SCRAM-SHA-1 have 32-byte keys: imported as SCRAM-SHA-256');
      }
      for (const [user, password] of Object.entries(PASSWORDS)) {
        const client = await loginAs(target, user, password);
        await client.close();
      }
    } finally {
      await target.stop();
    }
  }, 120_000);
});
