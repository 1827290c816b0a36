/**
 * Moving an account between server software with xporta's XEP-0227 documents:
 *  - Prosody → ejabberd: real clients fill alice on Prosody (SQLite), xporta exports her and
 *    imports the document into ejabberd 23.01's SQL tables; after clear_cache a real client logs
 *    in to ejabberd with her old password and gets her data back from ejabberd.
 *  - ejabberd → Prosody: the same the other way round.
 * The README's "Moving between server software" table is backed by these assertions.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ApplyReport, StorageBackend, UserRef } from '../../src/storage/backend.js';
import { EjabberdSqlBackend } from '../../src/storage/ejabberd-sql/index.js';
import { ProsodySqlBackend } from '../../src/storage/prosody-sql/index.js';
import { exportUserDocument, importUserDocument } from '../../src/transfer/account-transfer.js';
import { DATA_KINDS, childElements, textOf } from '../../src/records/model.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { writeDocument } from '../../src/xep0227/writer.js';
import { describeWithEjabberd, ejabberdConnection, startEjabberd, type EjabberdHandle } from '../support/ejabberd.js';
import { populateEjabberdAlice, type EjabberdPopulated } from '../support/ejabberd-populate.js';
import { NO_CONVERSION_PROSODY_OPTIONS, populateAccount, type PopulateSummary } from '../support/populate.js';
import { createUser, describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { connectClient, getBlocklist, getPepItems, getPrivate, getRoster, getVCard, queryMam, type XmppClient } from '../support/xmpp-client.js';

const ALL = new Set(DATA_KINDS);
const NEW_PASSWORD = 'a new password';
const ALICE: UserRef = { host: 'localhost', user: 'alice' };

async function move(from: StorageBackend, to: StorageBackend): Promise<{ report: ApplyReport; bytes: number }> {
  const chunks: Buffer[] = [];
  for await (const chunk of writeDocument(exportUserDocument(from, ALICE, ALL))) chunks.push(chunk);
  const doc = Buffer.concat(chunks);
  const report = await importUserDocument(to, ALICE, readDocument(doc), { mode: 'replace', dryRun: false, include: ALL, createAccount: true });
  return { report, bytes: doc.length };
}

function bodies(messages: readonly { message: { getChildText(name: string): string | null } }[]): string[] {
  return messages.map((m) => m.message.getChildText('body') ?? '');
}

describeWithProsody('cross-server moves', () => {
  describeWithEjabberd('Prosody (SQLite) → ejabberd 23.01 (SQLite)', () => {
    let prosody: ProsodyHandle;
    let ej: EjabberdHandle;
    let summary: PopulateSummary;
    let report: ApplyReport;
    let client: XmppClient;

    beforeAll(async () => {
      [prosody, ej] = await Promise.all([startProsody({ storage: 'sqlite', passwordHash: 'SHA-1', ...NO_CONVERSION_PROSODY_OPTIONS }), startEjabberd({ storage: 'sqlite' })]);
      summary = await populateAccount(prosody, { messages: 20 });
      const source = new ProsodySqlBackend({ dialect: 'sqlite', database: prosody.sql?.database ?? '', hosts: { localhost: { passwordHash: 'SHA-1' } } });
      const target = new EjabberdSqlBackend({ ...ejabberdConnection(ej), hosts: { localhost: {} }, newSchema: ej.newSchema, onCommitted: () => ej.clearCache() });
      try {
        ({ report } = await move(source, target));
      } finally {
        await source.close();
        await target.close();
      }
      client = await connectClient({ service: ej.service, domain: 'localhost', username: 'alice', password: summary.alice.password });
    }, 240_000);

    afterAll(async () => {
      await client?.close();
      await Promise.all([prosody?.stop(), ej?.stop()]);
    });

    it('reports what it applied and what ejabberd cannot keep', () => {
      expect(report.created).toBe(true);
      expect(report.counts.credentials).toBe(1);
      expect(report.warnings).toEqual([]);
      expect(report.counts.archive).toBe(summary.archive.messages.length);
      expect(report.unsupported).toEqual([]);
      // Only node options ejabberd 23.01 has no field for (Prosody's pubsub#description) are dropped.
      for (const s of report.skipped) expect(s).toMatchObject({ kind: 'pep', reason: expect.stringMatching(/^node option pubsub#/) });
    });

    it('keeps unanswered subscription requests (ejabberd rows with ask I)', async () => {
      const backend = new EjabberdSqlBackend({ ...ejabberdConnection(ej), hosts: { localhost: {} }, newSchema: ej.newSchema });
      try {
        const pending: string[] = [];
        for await (const r of backend.readUser(ALICE, { include: new Set(['roster']) })) if (r.kind === 'pending-subscription') pending.push(r.from);
        expect(pending.sort()).toEqual(summary.pendingSubscriptions.map((p) => p.from).sort());
      } finally {
        await backend.close();
      }
    });

    it('logs in with the old password (SCRAM-SHA-1) and gets the roster', async () => {
      const roster = await getRoster(client);
      const got = roster.map((r) => ({ jid: r.jid, subscription: r.subscription, ask: r.ask, groups: [...r.groups].sort() })).sort((a, b) => a.jid.localeCompare(b.jid));
      const want = summary.roster.items.map((r) => ({ jid: r.jid, subscription: r.subscription, ask: r.ask, groups: [...r.groups].sort() }));
      expect(got).toEqual(want);
    });

    it('vCard and private XML', async () => {
      const vcard = await getVCard(client);
      const fn = childElements(summary.vcard.element, 'FN')[0];
      expect(vcard?.getChildText('FN')).toBe(fn ? textOf(fn) : undefined);
      for (const el of summary.private) expect(await getPrivate(client, el.name, el.xmlns), `${el.xmlns}`).toBeDefined();
    });

    it('PEP items', async () => {
      for (const node of summary.pep) {
        const items = await getPepItems(client, undefined, node.node);
        expect(items.map((i) => i.id).sort(), node.node).toEqual(node.items.map((i) => i.id).sort());
      }
    });

    it('MAM history, blocklist and offline messages', async () => {
      expect(bodies(await queryMam(client))).toEqual(summary.archive.messages.map((m) => m.body));
      expect((await getBlocklist(client)).sort()).toEqual([...summary.blocklist].sort());
      const count = await ej.ctl(['get_offline_count', 'alice', 'localhost']);
      expect(count.stdout.trim()).toBe(String(summary.offline.length));
    });
  });

  describeWithEjabberd('Prosody with password_hash SHA-256 → ejabberd with auth_scram_hash: sha256', () => {
    let prosody: ProsodyHandle;
    let ej: EjabberdHandle;
    let summary: PopulateSummary;
    let report: ApplyReport;

    beforeAll(async () => {
      [prosody, ej] = await Promise.all([
        startProsody({ storage: 'sqlite', passwordHash: 'SHA-256', ...NO_CONVERSION_PROSODY_OPTIONS }),
        startEjabberd({ storage: 'sqlite', scramHash: 'sha256' }),
      ]);
      summary = await populateAccount(prosody, { messages: 4 });
      const source = new ProsodySqlBackend({ dialect: 'sqlite', database: prosody.sql?.database ?? '', hosts: { localhost: { passwordHash: 'SHA-256' } } });
      const target = new EjabberdSqlBackend({
        ...ejabberdConnection(ej),
        hosts: { localhost: { passwordHash: 'SHA-256' } },
        newSchema: ej.newSchema,
        onCommitted: () => ej.clearCache(),
      });
      try {
        ({ report } = await move(source, target));
      } finally {
        await source.close();
        await target.close();
      }
    }, 240_000);

    afterAll(async () => {
      await Promise.all([prosody?.stop(), ej?.stop()]);
    });

    it('logs in with the old password over SCRAM-SHA-256 and gets the roster and history', async () => {
      expect(report.counts.credentials).toBe(1);
      expect(report.warnings).toEqual([]);
      const client = await connectClient({ service: ej.service, domain: 'localhost', username: 'alice', password: summary.alice.password });
      try {
        expect((await getRoster(client)).map((r) => r.jid).sort()).toEqual(summary.roster.items.map((r) => r.jid));
        expect(bodies(await queryMam(client))).toEqual(summary.archive.messages.map((m) => m.body));
      } finally {
        await client.close();
      }
    });
  });

  describeWithEjabberd('ejabberd 23.01 (SQLite) → Prosody (SQLite)', () => {
    let prosody: ProsodyHandle;
    let ej: EjabberdHandle;
    let populated: EjabberdPopulated;
    let report: ApplyReport;
    let client: XmppClient;

    beforeAll(async () => {
      [prosody, ej] = await Promise.all([startProsody({ storage: 'sqlite', passwordHash: 'SHA-1', ...NO_CONVERSION_PROSODY_OPTIONS }), startEjabberd({ storage: 'sqlite' })]);
      populated = await populateEjabberdAlice(ej);
      const source = new EjabberdSqlBackend({ ...ejabberdConnection(ej), hosts: { localhost: {} }, newSchema: ej.newSchema });
      const target = new ProsodySqlBackend({ dialect: 'sqlite', database: prosody.sql?.database ?? '', hosts: { localhost: { passwordHash: 'SHA-1' } } });
      try {
        await target.ensureSchema();
        ({ report } = await move(source, target));
      } finally {
        await source.close();
        await target.close();
      }
      // Prosody cannot keep ejabberd's SCRAM salt (random bytes, Prosody stores it as text): the
      // account arrives with a random password, and the operator sets a new one.
      await createUser(prosody, 'alice', 'localhost', NEW_PASSWORD);
      client = await connectClient({ service: prosody.service, domain: 'localhost', username: 'alice', password: NEW_PASSWORD });
    }, 240_000);

    afterAll(async () => {
      await client?.close();
      await Promise.all([prosody?.stop(), ej?.stop()]);
    });

    it('reports what it applied; the SCRAM credentials need a password reset', () => {
      expect(report.created).toBe(true);
      expect(report.counts.credentials).toBeUndefined();
      expect(report.skipped).toContainEqual(expect.objectContaining({ kind: 'credentials', reason: expect.stringMatching(/salt/) }));
      expect(report.warnings).toEqual([expect.stringMatching(/password must be reset/)]);
      // 24.12 also keeps the XEP-0402 bookmark as XEP-0048 private storage.
      expect(report.counts).toMatchObject({ vcard: 1, private: ej.version === '24.12' ? 2 : 1, archive: 3, offline: 2, blocklist: 1 });
    });

    it('logs in (after the reset) and gets roster, vCard, private XML', async () => {
      const roster = await getRoster(client);
      expect(roster.map((r) => [r.jid, r.name, r.subscription, r.ask, [...r.groups].sort()])).toEqual([['bob@localhost', 'Bob', 'none', 'subscribe', ['Friends', 'Work']]]);
      expect((await getVCard(client))?.getChildText('FN')).toBe('Alice Example');
      expect((await getPrivate(client, 'notes', 'urn:example:notes'))?.getChildText('note')).toBe('remember');
    });

    it('keeps carol\'s unanswered subscription request', async () => {
      const backend = new ProsodySqlBackend({ dialect: 'sqlite', database: prosody.sql?.database ?? '', hosts: { localhost: { passwordHash: 'SHA-1' } } });
      try {
        const pending: string[] = [];
        for await (const r of backend.readUser(ALICE, { include: new Set(['roster']) })) if (r.kind === 'pending-subscription') pending.push(r.from);
        expect(pending).toEqual(['carol@localhost']);
      } finally {
        await backend.close();
      }
    });

    it('PEP items, blocklist and MAM history', async () => {
      expect((await getPepItems(client, undefined, 'http://jabber.org/protocol/nick')).map((i) => i.payload?.text())).toEqual(['Ali']);
      expect((await getPepItems(client, undefined, 'urn:xmpp:bookmarks:1')).map((i) => i.id)).toEqual(['room@conference.localhost']);
      expect(await getBlocklist(client)).toEqual(['spammer@example.net']);
      expect(bodies(await queryMam(client))).toEqual(populated.bodies);
    });
  });
});
