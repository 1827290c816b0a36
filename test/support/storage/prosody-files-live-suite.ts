/**
 * The live suite of ProsodyFilesBackend, run against one Prosody generation by
 * prosody-files-live.test.ts (0.12) and prosody-files-live-13.test.ts (13), with `storage = "internal"`:
 * (a) real clients fill alice's account (test/support/populate.ts), Prosody stops, and xporta
 *     reads from the files exactly what the server stored and served;
 * (b) with Prosody still stopped, xporta imports alice's export as a new account `dave` (SCRAM
 *     credentials only, alice's, so alice's password works), Prosody starts again on the same
 *     data, and a real client logs in as dave and gets everything back from Prosody.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProsodyFilesBackend } from '../../../src/storage/prosody-files/index.js';
import { DATA_KINDS, type UserRecord, type UserStart } from '../../../src/records/model.js';
import { NO_CONVERSION_PROSODY_OPTIONS, populateAccount, type PopulateSummary } from '../populate.js';
import { describeWithProsody, startProsody, type ProsodyHandle, type ProsodyVersion } from '../prosody.js';
import { loginAs, type XmppClient } from '../xmpp-client.js';
import { expectClientFindsPopulatedAccount, importAliceAsDave, itReadsThePopulatedAccount, recordsOf } from './populated-reads.js';
import { collect } from './sample-user.js';

const ALL = new Set(DATA_KINDS);

type Variant = { readonly passwordHash: 'SHA-1' | 'SHA-256'; readonly conversion: boolean };

// With conversion (the rig's defaults) the vCard and XEP-0049 bookmarks end up in PEP; without, in their own stores.
const VARIANTS: readonly Variant[] = [
  { passwordHash: 'SHA-1', conversion: true },
  { passwordHash: 'SHA-256', conversion: false },
];



async function filesOf(dir: string, user: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(dir, 'localhost'), { withFileTypes: true })) {
    // Host-level stores (13's cron.dat) are files beside the store directories.
    if (!entry.isDirectory()) continue;
    const store = entry.name;
    for (const file of await readdir(join(dir, 'localhost', store))) if (file.startsWith(`${user}.`) || file.includes('~')) out.push(`${store}/${file}`);
  }
  return out.sort();
}

export function defineProsodyFilesLiveSuite(version: ProsodyVersion, extra?: () => void): void {
  describeWithProsody(`ProsodyFilesBackend with a real Prosody ${version} (storage = "internal")`, () => {
    for (const variant of VARIANTS) {
      describe(`${variant.passwordHash}${variant.conversion ? ', vCard/bookmarks converted to PEP' : ''}`, () => {
        let root: string;
        let prosody: ProsodyHandle | undefined;
        let summary: PopulateSummary;
        let backend: ProsodyFilesBackend;
        let account: UserStart;
        let records: UserRecord[];
        const clients: XmppClient[] = [];
        const prosodyOptions = {
          version,
          storage: 'internal' as const,
          passwordHash: variant.passwordHash,
          ...(variant.conversion ? {} : NO_CONVERSION_PROSODY_OPTIONS),
        };

        beforeAll(async () => {
          // Our own directory, so that stop() keeps the data for xporta and for the second start.
          root = await mkdtemp(join(tmpdir(), 'xporta-files-live-'));
          prosody = await startProsody({ ...prosodyOptions, dir: root });
          summary = await populateAccount(prosody, { messages: 24 });
          await prosody.stop();
          prosody = undefined;
          backend = new ProsodyFilesBackend({ path: join(root, 'data'), hosts: { localhost: { passwordHash: variant.passwordHash } } });
          account = (await backend.readAccount({ host: 'localhost', user: 'alice' }))!;
          records = await collect(backend.readUser({ host: 'localhost', user: 'alice' }, { include: ALL }));
        }, 180_000);

        afterAll(async () => {
          await Promise.all(clients.map((c) => c.close()));
          await backend?.close();
          await prosody?.stop();
          if (root && process.env.XPORTA_KEEP_TEST_DATA !== '1') await rm(root, { recursive: true, force: true });
        });

        it('lists the accounts prosodyctl created', async () => {
          expect(await backend.listHosts()).toContain('localhost');
          expect(await collect(backend.listUsers('localhost'))).toEqual(summary.accounts.map((a) => a.user).sort());
        });

        itReadsThePopulatedAccount(() => ({ account, records, summary }), variant.passwordHash);

        it(`keeps the archive ids ${version === '13' ? 'UUID v7' : 'util.id.medium'} gave them`, () => {
          const id = version === '13' ? /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/ : /^[A-Za-z0-9_-]{24}$/;
          for (const record of recordsOf(records, 'archive')) expect(record.id).toMatch(id);
        });

        it('imports alice’s export as a new account while Prosody is stopped; a real client then finds it complete', async () => {
          await importAliceAsDave(backend, account, records);
          const files = await filesOf(join(root, 'data'), 'dave');
          expect(files).toContain('accounts/dave.dat');
          expect(files).toContain('archive/dave.list');
          expect(files.filter((f) => f.includes('~'))).toEqual([]);

          prosody = await startProsody({ ...prosodyOptions, dir: root });
          // alice's SCRAM keys, so alice's password.
          const client = await loginAs(prosody, 'dave', summary.alice.password, { resource: 'check' });
          clients.push(client);
          await expectClientFindsPopulatedAccount(client, summary);
        });
      });
    }
    extra?.();
  }, version);
}

