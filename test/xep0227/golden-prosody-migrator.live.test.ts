/**
 * xporta's reader against the XEP-0227 that Prosody itself writes: a real Prosody is filled by
 * real clients (populate.ts), stopped, and exported with the unchanged `prosody-migrator`; every
 * record the reader yields is checked against what populate says the server stored.
 *
 * The fixture under test/fixtures/prosody-migrator/ is one such export kept byte for byte (one
 * line, single quotes, Lua's attribute order, random salts and archive ids), with populate's
 * summary of that run beside it, so the same checks run without Prosody. Nothing in it is
 * normalised: its value is in being exactly what Prosody produced, and the checks compare
 * against the summary from the same run rather than against constants. Regenerate both with
 * `XPORTA_UPDATE_FIXTURES=1 npx vitest run test/xep0227/golden-prosody-migrator.test.ts`.
 */
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DocumentEvent, UserRecord, UserStart } from '../../src/records/model.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { NO_CONVERSION_PROSODY_OPTIONS, populateAccount, type PopulateSummary } from '../support/populate.js';
import { requireBinary, skipWithoutProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import {
  PROSODY_MIGRATOR_BIN,
  ProsodyMigratorError,
  runProsodyMigrator,
  runProsodyMigratorImport,
  type MigratorExportResult,
} from '../../bench/prosody-migrator.js';
import { getRoster, loginAs, queryMam } from '../support/xmpp-client.js';

const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/prosody-migrator/', import.meta.url));
const FIXTURE_XML = join(FIXTURE_DIR, 'alice@localhost.xml');
const FIXTURE_SUMMARY = join(FIXTURE_DIR, 'alice@localhost.summary.json');
const UPDATE_FIXTURES = process.env.XPORTA_UPDATE_FIXTURES === '1';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function readEvents(path: string): Promise<DocumentEvent[]> {
  const events: DocumentEvent[] = [];
  for await (const event of readDocument(createReadStream(path))) events.push(event);
  return events;
}

type RecordOf<K extends UserRecord['kind']> = Extract<UserRecord, { kind: K }>;

function recordsOf<K extends UserRecord['kind']>(records: readonly UserRecord[], kind: K): RecordOf<K>[] {
  return records.filter((r): r is RecordOf<K> => r.kind === kind);
}

const byKey =
  <T>(key: (item: T) => string) =>
  (a: T, b: T): number =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;

/** SCRAM (RFC 5802) keys for a password, as a server derives them. */
function scramKeys(password: string, salt: Buffer, iterations: number): { storedKey: Buffer; serverKey: Buffer } {
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 20, 'sha1');
  const clientKey = createHmac('sha1', salted).update('Client Key').digest();
  return {
    storedKey: createHash('sha1').update(clientKey).digest(),
    serverKey: createHmac('sha1', salted).update('Server Key').digest(),
  };
}

/**
 * Checks one user document as Prosody 0.12's mod_storage_xep0227 writes it against what
 * populate created. Where Prosody's export loses data, the loss is asserted too, so a change
 * in Prosody (or in the reader's dialect handling) shows up here.
 */
function expectProsodyExport(events: readonly DocumentEvent[], summary: PopulateSummary): void {
  // Structure: exactly one host with exactly one user.
  expect(events[0]).toEqual({ kind: 'host', jid: summary.host });
  expect(events.at(-2)).toEqual({ kind: 'user-end' });
  expect(events.at(-1)).toEqual({ kind: 'host-end' });
  const user = events[1] as UserStart;
  expect(user.kind).toBe('user');
  const records = events.slice(2, -2) as UserRecord[];
  expect(records.map((r) => r.kind)).not.toContain('user');
  expect(records.map((r) => r.kind)).not.toContain('host');
  // Every part of Prosody's dialect is understood: nothing falls through as opaque.
  expect(recordsOf(records, 'opaque')).toEqual([]);

  // Credentials: SCRAM-SHA-1 with Prosody's defaults, and keys that really belong to the password.
  expect(user.name).toBe(summary.alice.user);
  expect(user.password).toBeUndefined();
  expect(user.extraAttributes).toEqual({});
  expect(user.scram).toHaveLength(1);
  const scram = user.scram[0];
  if (!scram) throw new Error('no SCRAM credentials');
  expect(scram.mechanism).toBe('SCRAM-SHA-1');
  expect(scram.iterationCount).toBe(10000);
  const storedKey = Buffer.from(scram.storedKey, 'base64');
  const serverKey = Buffer.from(scram.serverKey, 'base64');
  expect(storedKey).toHaveLength(20);
  expect(serverKey).toHaveLength(20);
  // Prosody's salt is the *text* of a UUID, and the export base64-encodes that text.
  const salt = Buffer.from(scram.salt, 'base64');
  expect(salt.toString('latin1')).toMatch(UUID);
  const derived = scramKeys(summary.alice.password, salt, scram.iterationCount);
  expect(storedKey.equals(derived.storedKey)).toBe(true);
  expect(serverKey.equals(derived.serverKey)).toBe(true);

  // Roster: items with names, groups, subscription and ask; the version Prosody reported.
  const rosters = recordsOf(records, 'roster');
  expect(rosters).toHaveLength(1);
  const roster = rosters[0];
  expect(roster?.version).toBe(summary.roster.version);
  const items = [...(roster?.items ?? [])].sort(byKey((i) => i.jid)).map((i) => ({ ...i, groups: [...i.groups].sort() }));
  expect(items).toEqual(summary.roster.items);
  // Pending inbound subscriptions: Prosody writes a bare <presence> (pie namespace) and drops
  // whatever the request carried (here a <nick>), so only `from` survives.
  expect(recordsOf(records, 'pending-subscription')).toEqual(
    summary.pendingSubscriptions.map((p) => ({ kind: 'pending-subscription', from: p.from, payload: [] })),
  );
  expect(summary.pendingSubscriptions.every((p) => p.payload.length > 0)).toBe(true);

  // vCard-temp: exported only when it lives in the `vcard` store; with mod_vcard_legacy it is
  // the PEP vcard4 item (checked with the other PEP items below).
  const vcards = recordsOf(records, 'vcard');
  if (summary.vcard.storedAs === 'vcard') {
    expect(vcards).toEqual([{ kind: 'vcard', vcard: summary.vcard.element }]);
  } else {
    expect(vcards).toEqual([]);
    expect(summary.pep.map((n) => n.node)).toContain('urn:xmpp:vcard4');
  }

  // Private XML, each element as stored.
  const privates = recordsOf(records, 'private').map((r) => r.element);
  expect([...privates].sort(byKey((e) => `${e.xmlns} ${e.name}`))).toEqual(
    [...summary.private].sort(byKey((e) => `${e.xmlns} ${e.name}`)),
  );

  // PEP nodes: the configuration populate chose, affiliations and subscriptions.
  const nodes = recordsOf(records, 'pep-node');
  expect(nodes.map((n) => n.node).sort()).toEqual(summary.pep.map((n) => n.node).sort());
  for (const expected of summary.pep) {
    const node = nodes.find((n) => n.node === expected.node);
    const config = Object.fromEntries((node?.config ?? []).map((f) => [f.var, f.values]));
    for (const [field, value] of Object.entries(expected.config)) {
      expect({ node: expected.node, field, values: config[field] }).toEqual({ node: expected.node, field, values: [value] });
    }
    expect([...(node?.affiliations ?? [])].sort(byKey((a) => a.jid))).toEqual(
      Object.entries(expected.affiliations)
        .map(([jid, affiliation]) => ({ jid, affiliation }))
        .sort(byKey((a) => a.jid)),
    );
    expect(node?.subscriptions).toEqual(expected.subscribers.map((jid) => ({ jid, subscription: 'subscribed' })));
  }

  // PEP items: ids and payloads; Prosody drops publisher and publish time.
  const pepItems = recordsOf(records, 'pep-item');
  for (const item of pepItems) {
    expect(item.publisher).toBeUndefined();
    expect(item.published).toBeUndefined();
  }
  const itemsByNode = (node: string): { id: string; payload: unknown }[] =>
    pepItems
      .filter((i) => i.node === node)
      .map((i) => ({ id: i.id, payload: i.payload }))
      .sort(byKey((i) => i.id));
  for (const expected of summary.pep) expect({ node: expected.node, items: itemsByNode(expected.node) }).toEqual({ node: expected.node, items: expected.items });
  expect(new Set(pepItems.map((i) => i.node))).toEqual(new Set(summary.pep.filter((n) => n.items.length > 0).map((n) => n.node)));

  // Archive: every message in archive order, with MAM's id and time; `with` is not in the file
  // and is derived from the stanza. mod_mam also archived the messages that went offline.
  const archive = recordsOf(records, 'archive');
  const exchanged = summary.archive.messages.filter((m) => m.exchanged);
  expect(exchanged).toHaveLength(summary.archive.exchanged);
  expect(archive).toHaveLength(summary.archive.exchanged + summary.offline.length);
  expect(archive.map((a) => a.id)).toEqual(summary.archive.messages.map((m) => m.id));
  expect(archive.map((a) => a.timestamp)).toEqual(summary.archive.messages.map((m) => m.timestamp));
  expect(archive.map((a) => a.with)).toEqual(summary.archive.messages.map((m) => m.with));
  expect(archive.map((a) => a.stanza)).toEqual(summary.archive.messages.map((m) => m.stanza));
  const bodies = archive.map((a) => a.stanza.children.find((c) => typeof c !== 'string' && c.name === 'body'));
  expect(bodies.map((b) => (b && typeof b !== 'string' ? b.children.join('') : undefined))).toEqual(
    summary.archive.messages.map((m) => m.body),
  );

  // Not in Prosody's XEP-0227 at all: offline messages, blocklist (and privacy lists).
  expect(summary.offline.length).toBeGreaterThan(0);
  expect(summary.blocklist.length).toBeGreaterThan(0);
  expect(recordsOf(records, 'offline')).toEqual([]);
  expect(recordsOf(records, 'blocklist')).toEqual([]);
  expect(recordsOf(records, 'privacy')).toEqual([]);
}

/** The summary without its timings, one archived message per line to keep the file reviewable. */
function summaryJson(summary: PopulateSummary): string {
  const { timings: _timings, archive, ...rest } = summary;
  const marker = '"@@messages@@"';
  const text = JSON.stringify({ ...rest, archive: { exchanged: archive.exchanged, messages: '@@messages@@' } }, null, 2);
  const lines = archive.messages.map((m) => `      ${JSON.stringify(m)}`).join(',\n');
  return `${text.replace(marker, `[\n${lines}\n    ]`)}\n`;
}

// ---------------------------------------------------------------------------------------------

describe('golden fixture: prosody-migrator output for alice@localhost', () => {
  it('reads the stored export and matches the summary of the run that produced it', async () => {
    const summary = JSON.parse(await readFile(FIXTURE_SUMMARY, 'utf8')) as PopulateSummary;
    const text = await readFile(FIXTURE_XML, 'utf8');
    // Still Prosody's own bytes: one line, single-quoted attributes, no XML declaration.
    expect(text.startsWith("<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='alice'>")).toBe(true);
    expect(text).not.toContain('\n');
    expect(summary.vcard.storedAs).toBe('vcard');
    expect(summary.archive.exchanged).toBe(200);
    expectProsodyExport(await readEvents(FIXTURE_XML), summary);
  });
});

interface Profile {
  readonly name: string;
  readonly options: typeof NO_CONVERSION_PROSODY_OPTIONS | Record<string, never>;
  /** Whether this profile's export is the one kept as fixture. */
  readonly fixture: boolean;
}

const PROFILES: readonly Profile[] = [
  { name: 'vCard-temp and XEP-0049 kept in their stores (mod_vcard, no mod_bookmarks)', options: NO_CONVERSION_PROSODY_OPTIONS, fixture: true },
  { name: 'rig defaults (mod_vcard_legacy, mod_bookmarks)', options: {}, fixture: false },
];

/** describeWithProsody, plus the migrator: a missing one skips locally and fails under CI. */
function describeWithMigrator(name: string, fn: () => void): void {
  describe.skipIf(skipWithoutProsody() || !requireBinary(PROSODY_MIGRATOR_BIN))(name, fn);
}

for (const profile of PROFILES) {
  describeWithMigrator(`prosody-migrator export, ${profile.name}`, () => {
    let prosody: ProsodyHandle | undefined;
    let summary: PopulateSummary;
    let exported: MigratorExportResult;
    const scratch: string[] = [];

    beforeAll(async () => {
      // Our own directory: the rig removes the ones it creates on stop(), database included.
      const work = await mkdtemp(join(tmpdir(), 'xporta-golden-'));
      scratch.push(work);
      prosody = await startProsody({ ...profile.options, dir: join(work, 'prosody') });
      summary = await populateAccount(prosody);
      const sqlite = prosody.sql?.database;
      if (!sqlite) throw new Error('the rig Prosody has no SQLite database');
      // Stopped first, so the file is quiescent and complete when the migrator opens it.
      await prosody.stop();
      exported = await runProsodyMigrator({ sqliteDatabase: sqlite, outputDir: join(work, 'export'), host: summary.host });
      console.info(
        `[golden ${profile.fixture ? 'no-conversion' : 'defaults'}] populate ${summary.timings.totalMs.toFixed(0)} ms ` +
          `(${summary.archive.exchanged} messages in ${summary.timings.messagesMs.toFixed(0)} ms), ` +
          `prosody-migrator sql→xep0227 ${exported.durationMs.toFixed(0)} ms, ` +
          exported.files.map((f) => `${f.jid} ${f.bytes} B`).join(', '),
      );
    });

    afterAll(async () => {
      await prosody?.stop();
      if (process.env.XPORTA_KEEP_TEST_DATA !== '1') await Promise.all(scratch.map((d) => rm(d, { recursive: true, force: true })));
    });

    it('writes one <user>@<host>.xml per account and nothing else', () => {
      expect(exported.files.map((f) => f.jid)).toEqual(['alice@localhost', 'bob@localhost', 'carol@localhost']);
      expect(exported.errors).toEqual([]);
      expect(exported.stderr).toContain('Done!');
    });

    it('reads back as the records populate created', async () => {
      const alice = exported.files.find((f) => f.jid === summary.alice.jid);
      if (!alice) throw new Error('no file for alice');
      const events = await readEvents(alice.path);
      expectProsodyExport(events, summary);
      if (profile.fixture && UPDATE_FIXTURES) {
        await mkdir(FIXTURE_DIR, { recursive: true });
        await writeFile(FIXTURE_XML, await readFile(alice.path));
        await writeFile(FIXTURE_SUMMARY, summaryJson(summary));
      }
    });

    if (!profile.fixture) return;

    it('aborts on a store the XEP-0227 driver has no handler for, even with --keep-going', async () => {
      const sqlite = join(scratch[0] ?? '', 'prosody', 'data', 'prosody.sqlite');
      const outputDir = join(scratch[0] ?? '', 'unsupported');
      const failure = await runProsodyMigrator({ sqliteDatabase: sqlite, outputDir, stores: ['accounts'], extraStores: ['blocklist'] }).catch(
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(ProsodyMigratorError);
      expect(String((failure as Error).message)).toContain('unsupported-datastore');

      const kept = await runProsodyMigrator({ sqliteDatabase: sqlite, outputDir, stores: ['accounts'], extraStores: ['blocklist'], keepGoing: true }).catch(
        (err: unknown) => err,
      );
      // --keep-going only guards the per-user steps; opening the store is a bare assert before them.
      expect(kept).toBeInstanceOf(ProsodyMigratorError);
      expect(String((kept as Error).message)).toContain('unsupported-datastore');
    });

    it('imports its own export back into SQLite (xep0227 → sql) for a Prosody to serve', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'xporta-golden-import-'));
      scratch.push(dir);
      await mkdir(join(dir, 'data'));
      const imported = await runProsodyMigratorImport({
        inputDir: exported.outputDir,
        sqliteDatabase: join(dir, 'data', 'prosody.sqlite'),
        host: summary.host,
      });
      console.info(`[golden import] prosody-migrator xep0227→sql ${imported.durationMs.toFixed(0)} ms, skipped:\n${imported.errors.join('\n')}`);
      // The host-level pass of the archive store finds no localhost.xml and asserts.
      expect(imported.errors.some((l) => l.includes('Error migrating data for host'))).toBe(true);

      // The rig starts on that database (it uses <dir>/data/prosody.sqlite).
      const again = await startProsody({ ...profile.options, dir });
      try {
        const alice = await loginAs(again, summary.alice.user, summary.alice.password);
        try {
          const roster = (await getRoster(alice)).sort(byKey((i) => i.jid));
          expect(roster.map((i) => ({ jid: i.jid, subscription: i.subscription, ask: i.ask }))).toEqual(
            summary.roster.items.map((i) => ({ jid: i.jid, subscription: i.subscription, ask: i.ask })),
          );
          const mam = await queryMam(alice);
          expect(mam.map((m) => m.id)).toEqual(summary.archive.messages.map((m) => m.id));
        } finally {
          await alice.close();
        }
      } finally {
        await again.stop();
      }
    });
  });
}
