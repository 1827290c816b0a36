/**
 * Moves between server generations with xporta's XEP-0227 documents, each checked through the
 * target server itself with a real client: Prosody 0.12 → 13, 13 → 13 (SQLite → files),
 * 13 → ejabberd 24.12 and ejabberd 24.12 → 13. Each move logs in with the moved password
 * (ejabberd's SCRAM salt cannot be kept by Prosody: that one is reset first, as the README says),
 * gets roster, vCard, PEP items, bookmarks, blocklist and MAM back, has token grants working on a
 * Prosody 13 target, and leaves no error in either server's log.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ApplyReport, StorageBackend, UserRef } from '../../src/storage/backend.js';
import { EjabberdSqlBackend } from '../../src/storage/ejabberd-sql/index.js';
import { ProsodyFilesBackend } from '../../src/storage/prosody-files/index.js';
import { ProsodySqlBackend } from '../../src/storage/prosody-sql/index.js';
import { exportUserDocument, importUserDocument } from '../../src/transfer/account-transfer.js';
import { DATA_KINDS, childElements, textOf } from '../../src/records/model.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { writeDocument } from '../../src/xep0227/writer.js';
import { describeWithEjabberd, ejabberdConnection, startEjabberd, type EjabberdHandle } from '../support/ejabberd.js';
import { populateEjabberdAlice, type EjabberdPopulated } from '../support/ejabberd-populate.js';
import { NO_CONVERSION_PROSODY_OPTIONS, populateAccount, type PopulateSummary } from '../support/populate.js';
import { createUser, describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { connectClient, getBlocklist, getPepItems, getRoster, getVCard, queryMam, type XmppClient } from '../support/xmpp-client.js';
import { grantWorks, logErrors, shell } from '../support/storage/prosody-13-served.js';

const ALL = new Set(DATA_KINDS);
const ALICE: UserRef = { host: 'localhost', user: 'alice' };
const HOSTS = { localhost: { passwordHash: 'SHA-1' as const } };

async function move(from: StorageBackend, to: StorageBackend): Promise<ApplyReport> {
  const chunks: Buffer[] = [];
  for await (const chunk of writeDocument(exportUserDocument(from, ALICE, ALL))) chunks.push(chunk);
  return importUserDocument(to, ALICE, readDocument(Buffer.concat(chunks)), { mode: 'replace', dryRun: false, include: ALL, createAccount: true });
}

/**
 * The server's generation is given, as `storage.serverVersion` gives it: a Prosody 13 leaves its
 * marks in the database (detectProsodyVersion) only once it has connected to it, which a server
 * just started need not have done by the time of the move.
 */
function prosodySql(prosody: ProsodyHandle): ProsodySqlBackend {
  return new ProsodySqlBackend({ dialect: 'sqlite', database: prosody.sql?.database ?? '', hosts: HOSTS, serverVersion: prosody.version });
}

function ejabberdSql(ej: EjabberdHandle): EjabberdSqlBackend {
  return new EjabberdSqlBackend({ ...ejabberdConnection(ej), hosts: { localhost: {} }, newSchema: ej.newSchema, onCommitted: () => ej.clearCache() });
}

async function moveAndClose(from: StorageBackend, to: StorageBackend): Promise<ApplyReport> {
  try {
    return await move(from, to);
  } finally {
    await from.close();
    await to.close();
  }
}

/** What a populated alice (test/support/populate.ts) must get back from the target server. */
async function expectPopulatedServed(client: XmppClient, summary: PopulateSummary): Promise<void> {
  const roster = (await getRoster(client)).map((r) => r.jid).sort();
  expect(roster).toEqual(summary.roster.items.map((r) => r.jid).sort());
  const fn = childElements(summary.vcard.element, 'FN')[0];
  expect((await getVCard(client))?.getChildText('FN')).toBe(fn ? textOf(fn) : undefined);
  for (const node of summary.pep.filter((n) => n.items.length > 0)) {
    const items = await getPepItems(client, undefined, node.node);
    expect(items.map((i) => i.id).sort(), node.node).toEqual(node.items.map((i) => i.id).sort());
  }
  expect((await getBlocklist(client)).sort()).toEqual([...summary.blocklist].sort());
  expect((await queryMam(client)).map((m) => m.message.getChildText('body'))).toEqual(summary.archive.messages.map((m) => m.body));
}

describeWithProsody(
  'moves from and to Prosody 13',
  () => {
    describeWithProsody(
      'Prosody 0.12 (SQLite) → Prosody 13 (SQLite)',
      () => {
        let source: ProsodyHandle;
        let target: ProsodyHandle;
        let summary: PopulateSummary;
        let report: ApplyReport;
        let client: XmppClient | undefined;
        beforeAll(async () => {
          [source, target] = await Promise.all([startProsody({ version: '0.12' }), startProsody({ version: '13', extraModules: ['tokenauth'] })]);
          summary = await populateAccount(source, { messages: 8 });
          report = await moveAndClose(prosodySql(source), prosodySql(target));
          client = await connectClient({ service: target.service, domain: 'localhost', username: 'alice', password: summary.alice.password });
        }, 120_000);
        afterAll(async () => {
          await client?.close();
          await Promise.all([source?.stop(), target?.stop()]);
        });

        it('logs in with the moved password; Prosody 13 serves everything; token grants work; role prosody:member', async () => {
          expect(report).toMatchObject({ created: true, warnings: [] });
          await expectPopulatedServed(client as XmppClient, summary);
          expect(await grantWorks(target, 'alice')).toMatch(/Result: GRANTS=1/);
          expect(await shell(target, 'user:role("alice@localhost")')).toContain('prosody:member');
          expect(await logErrors(target)).toEqual([]);
          expect(await logErrors(source)).toEqual([]);
        });
      },
      '13',
    );

    describeWithProsody(
      'Prosody 13 (SQLite) → Prosody 13 (internal files)',
      () => {
        let source: ProsodyHandle;
        let target: ProsodyHandle;
        let root: string;
        let summary: PopulateSummary;
        let report: ApplyReport;
        let client: XmppClient | undefined;
        beforeAll(async () => {
          root = await mkdtemp(join(tmpdir(), 'xporta-move13-'));
          [source, target] = await Promise.all([
            startProsody({ version: '13' }),
            startProsody({ version: '13', storage: 'internal', dir: root, extraModules: ['tokenauth'] }),
          ]);
          summary = await populateAccount(source, { messages: 8 });
          // As `prosodyctl adduser` would have made her.
          await shell(source, 'user:set_role("alice@localhost", "localhost", "prosody:member")');
          // A data directory Prosody 13 has not written to yet cannot tell its generation: configured, as an operator would.
          report = await moveAndClose(prosodySql(source), new ProsodyFilesBackend({ path: join(root, 'data'), hosts: HOSTS, serverVersion: '13' }));
          client = await connectClient({ service: target.service, domain: 'localhost', username: 'alice', password: summary.alice.password });
        }, 120_000);
        afterAll(async () => {
          await client?.close();
          await Promise.all([source?.stop(), target?.stop()]);
          if (root) await rm(root, { recursive: true, force: true });
        });

        it('logs in with the moved password; Prosody 13 serves everything; token grants work; the role survives', async () => {
          expect(report).toMatchObject({ created: true, warnings: [] });
          await expectPopulatedServed(client as XmppClient, summary);
          expect(await grantWorks(target, 'alice')).toMatch(/Result: GRANTS=1/);
          const role = (await shell(source, 'user:role("alice@localhost")')).trim();
          expect(role).toContain('prosody:member');
          expect((await shell(target, 'user:role("alice@localhost")')).trim()).toBe(role);
          expect(await logErrors(target)).toEqual([]);
          expect(await logErrors(source)).toEqual([]);
        });
      },
      '13',
    );

    describeWithEjabberd(
      'Prosody 13 (SQLite) → ejabberd 24.12 (SQLite)',
      () => {
        let prosody: ProsodyHandle;
        let ej: EjabberdHandle;
        let summary: PopulateSummary;
        let report: ApplyReport;
        let client: XmppClient | undefined;
        beforeAll(async () => {
          // vCard and legacy bookmarks in their own stores: ejabberd has no vCard4 (see the README's move table).
          [prosody, ej] = await Promise.all([startProsody({ version: '13', ...NO_CONVERSION_PROSODY_OPTIONS }), startEjabberd({ version: '24.12' })]);
          summary = await populateAccount(prosody, { messages: 8 });
          report = await moveAndClose(prosodySql(prosody), ejabberdSql(ej));
          client = await connectClient({ service: ej.service, domain: 'localhost', username: 'alice', password: summary.alice.password });
        }, 120_000);
        afterAll(async () => {
          await client?.close();
          await Promise.all([prosody?.stop(), ej?.stop()]);
        });

        it('logs in with the moved password; ejabberd 24.12 serves everything; no error logged', async () => {
          expect(report.created).toBe(true);
          expect(report.counts.archive).toBe(summary.archive.messages.length);
          await expectPopulatedServed(client as XmppClient, summary);
          expect(ej.logErrors()).toEqual([]);
          expect(await logErrors(prosody)).toEqual([]);
        });
      },
      '24.12',
    );

    describeWithEjabberd(
      'ejabberd 24.12 (SQLite) → Prosody 13 (SQLite)',
      () => {
        let prosody: ProsodyHandle;
        let ej: EjabberdHandle;
        let populated: EjabberdPopulated;
        let report: ApplyReport;
        let client: XmppClient | undefined;
        beforeAll(async () => {
          [prosody, ej] = await Promise.all([startProsody({ version: '13', extraModules: ['tokenauth'] }), startEjabberd({ version: '24.12' })]);
          populated = await populateEjabberdAlice(ej);
          const target = prosodySql(prosody);
          await target.ensureSchema();
          report = await moveAndClose(ejabberdSql(ej), target);
          // ejabberd's SCRAM salt is random bytes Prosody cannot store as text: the operator resets the password.
          await createUser(prosody, 'alice', 'localhost', 'a new password');
          client = await connectClient({ service: prosody.service, domain: 'localhost', username: 'alice', password: 'a new password' });
        }, 120_000);
        afterAll(async () => {
          await client?.close();
          await Promise.all([prosody?.stop(), ej?.stop()]);
        });

        it('Prosody 13 serves roster, vCard, XEP-0402 bookmarks, PEP, blocklist and MAM; token grants work', async () => {
          expect(report.created).toBe(true);
          expect(report.warnings).toEqual([expect.stringMatching(/password must be reset/)]);
          const c = client as XmppClient;
          expect((await getRoster(c)).map((r) => r.jid)).toEqual(['bob@localhost']);
          expect((await getVCard(c))?.getChildText('FN')).toBe('Alice Example');
          expect((await getPepItems(c, undefined, 'http://jabber.org/protocol/nick')).map((i) => i.payload?.text())).toEqual(['Ali']);
          expect((await getPepItems(c, undefined, 'urn:xmpp:bookmarks:1')).map((i) => i.id)).toEqual(['room@conference.localhost']);
          expect(await getBlocklist(c)).toEqual(['spammer@example.net']);
          expect((await queryMam(c)).map((m) => m.message.getChildText('body'))).toEqual(populated.bodies);
          expect(await grantWorks(prosody, 'alice')).toMatch(/Result: GRANTS=1/);
          expect(await logErrors(prosody)).toEqual([]);
          expect(ej.logErrors()).toEqual([]);
        });
      },
      '24.12',
    );
  },
  '13',
);

