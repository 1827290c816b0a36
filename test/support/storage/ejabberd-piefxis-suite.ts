/**
 * Documents written by ejabberd's own `ejabberdctl export_piefxis`: a main file XIncluding one
 * file per vhost, SCRAM values base64-encoded twice. xporta's reader takes them, and the
 * accounts import into ejabberd's SQL tables through xporta with working passwords. The live
 * export runs per generation: ejabberd-piefxis.test.ts (23.01, with the fixture) and
 * ejabberd-piefxis-24.test.ts (24.12).
 *
 * test/fixtures/ejabberd/export_piefxis/ is such an export from 23.01 of the accounts
 * test/support/ejabberd-populate.ts makes (alice's password is EJ_ALICE_PASSWORD).
 */
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importHostDocument } from '../../../src/transfer/host-transfer.js';
import { EjabberdSqlBackend } from '../../../src/storage/ejabberd-sql/index.js';
import { DATA_KINDS, type DocumentEvent, type UserStart } from '../../../src/records/model.js';
import { readDocument } from '../../../src/xep0227/reader.js';
import { describeWithEjabberd, ejabberdConnection, startEjabberd, type EjabberdHandle, type EjabberdVersion } from '../ejabberd.js';
import { EJ_ALICE_PASSWORD, populateEjabberdAlice } from '../ejabberd-populate.js';
import { connectClient, getBlocklist, getPepItems, getPrivate, getRoster, getVCard } from '../xmpp-client.js';
import { FIXTURES_DIR } from '../paths.js';

const FIXTURE_DIR = join(FIXTURES_DIR, 'ejabberd', 'export_piefxis');
const ALL = new Set(DATA_KINDS);

async function mainFile(dir: string): Promise<string> {
  const files = (await readdir(dir)).filter((f) => /^\d{8}-\d{6}\.xml$/.test(f));
  if (files.length !== 1 || !files[0]) throw new Error(`expected one main export file in ${dir}, got ${files.join(', ')}`);
  return join(dir, files[0]);
}

function readExport(dir: string, file: string): AsyncGenerator<DocumentEvent> {
  return readDocument(
    (async function* () {
      const { readFile } = await import('node:fs/promises');
      yield await readFile(file);
    })(),
    { allowXInclude: true, baseDir: dir },
  );
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const i of items) out.push(i);
  return out;
}

/** The committed 23.01 export (no server needed). */
export function defineExportFixtureSuite(): void {
  describe('ejabberd 23.01 export_piefxis fixture', () => {
    it('reads the double-encoded SCRAM-SHA-1 credentials as the real keys', async () => {
      const events = await collect(readExport(FIXTURE_DIR, await mainFile(FIXTURE_DIR)));
      const alice = events.find((e): e is UserStart => e.kind === 'user' && e.name === 'alice');
      const scram = alice?.scram[0];
      expect(scram?.mechanism).toBe('SCRAM-SHA-1');
      // The real StoredKey is SHA-1(HMAC(SaltedPassword, "Client Key")) over the single-decoded salt.
      const salted = pbkdf2Sync(Buffer.from(EJ_ALICE_PASSWORD, 'utf8'), Buffer.from(scram?.salt ?? '', 'base64'), scram?.iterationCount ?? 0, 20, 'sha1');
      const storedKey = createHash('sha1').update(createHmac('sha1', salted).update('Client Key').digest()).digest('base64');
      expect(scram?.storedKey).toBe(storedKey);
      expect(events.filter((e) => e.kind === 'user').map((e) => (e as UserStart).name)).toEqual(['alice', 'bob', 'carol']);
      const kinds = events.map((e) => e.kind);
      expect(kinds).toEqual(expect.arrayContaining(['roster', 'pending-subscription', 'vcard', 'private', 'offline', 'privacy']));
    });
  });
}

/** A live export_piefxis of one generation, imported by xporta into another server of that generation. */
export function defineExportPiefxisSuite(version: EjabberdVersion): void {
  const current = version === '24.12';
  describeWithEjabberd(`ejabberd ${version} export_piefxis → xporta → ejabberd ${version} SQL`, () => {
    let source: EjabberdHandle;
    let target: EjabberdHandle;
    let exportDir: string;

    beforeAll(async () => {
      [source, target] = await Promise.all([startEjabberd({ version }), startEjabberd({ version })]);
      await populateEjabberdAlice(source);
      exportDir = await mkdtemp(join(tmpdir(), 'xporta-piefxis-'));
      const r = await source.ctl(['export_piefxis', exportDir]);
      if (r.code !== 0) throw new Error(`export_piefxis failed: ${r.stdout}${r.stderr}`);
    }, 120_000);

    afterAll(async () => {
      await Promise.all([source?.stop(), target?.stop()]);
      if (exportDir) await rm(exportDir, { recursive: true, force: true });
    });

    it('imports every account; alice logs in to the new server with her password', async () => {
      const backend = new EjabberdSqlBackend({ ...ejabberdConnection(target), hosts: { localhost: {} }, newSchema: true, onCommitted: () => target.clearCache() });
      try {
        const result = await importHostDocument(backend, 'localhost', readExport(exportDir, await mainFile(exportDir)), {
          mode: 'replace',
          dryRun: false,
          include: ALL,
          createAccount: true,
        });
        expect(result.users.map((u) => ('error' in u ? `${u.user}: ${u.error}` : u.user))).toEqual(['alice@localhost', 'bob@localhost', 'carol@localhost']);
        // export_piefxis carries no PEP; 24.12 keeps XEP-0048 and XEP-0402 bookmarks in sync, so
        // xporta writes alice's private bookmark as XEP-0402 items too, and says so.
        const bookmarkWarning = 'bookmarks: 1 XEP-0048 private bookmark(s) also written as XEP-0402 PEP items, which ejabberd keeps in sync';
        expect(result.users.map((u) => ('error' in u ? [] : u.warnings))).toEqual([current ? [bookmarkWarning] : [], [], []]);
      } finally {
        await backend.close();
      }
      const alice = await connectClient({ service: target.service, domain: 'localhost', username: 'alice', password: EJ_ALICE_PASSWORD });
      try {
        const roster = await getRoster(alice);
        expect(roster.map((r) => [r.jid, r.name, r.subscription, r.ask, [...r.groups].sort()])).toEqual([['bob@localhost', 'Bob', 'none', 'subscribe', ['Friends', 'Work']]]);
        expect((await getVCard(alice))?.getChildText('FN')).toBe('Alice Example');
        expect((await getPrivate(alice, 'notes', 'urn:example:notes'))?.getChildText('note')).toBe('remember');
        expect(await getBlocklist(alice)).toEqual(['spammer@example.net']);
        if (current) expect((await getPepItems(alice, undefined, 'urn:xmpp:bookmarks:1')).map((i) => i.id)).toEqual(['room@conference.localhost']);
      } finally {
        await alice.close();
      }
      expect((await target.ctl(['get_offline_count', 'alice', 'localhost'])).stdout.trim()).toBe('2');
    });

    it('neither ejabberd logged an error', () => {
      expect([...source.logErrors(), ...target.logErrors()]).toEqual([]);
    });
  }, version);
}
