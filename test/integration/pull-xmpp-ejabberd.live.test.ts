/**
 * ejabberd 23.01 as the source of a client-protocol pull: STARTTLS with a certificate from a
 * CA this test makes, SCRAM with a non-ASCII password, and the account read as ejabberd's
 * modules answer (mod_roster, mod_vcard, mod_pubsub PEP, mod_blocking, mod_privacy, mod_mam).
 * Offline messages stay in ejabberd's offline store.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openStorage } from '../../src/storage/open.js';
import { importUserDocument } from '../../src/transfer/account-transfer.js';
import { AddressPolicy } from '../../src/lib/net/address-policy.js';
import type { XmppPullError} from '../../src/storage/xmpp-client/index.js';
import { pullAccount, type PullOptions } from '../../src/storage/xmpp-client/index.js';
import { selectKinds } from '../../src/transfer/account-transfer.js';
import type { ArchiveRecord, DocumentEvent, UserRecord } from '../../src/records/model.js';
import { textOf } from '../../src/records/model.js';
import { populateEjabberdAlice, EJ_ALICE_PASSWORD, type EjabberdPopulated } from '../support/ejabberd-populate.js';
import { describeWithEjabberd, startEjabberd, type EjabberdHandle } from '../support/ejabberd.js';
import { createUser, startProsody } from '../support/prosody.js';
import { getBlocklist, getPepItems, getRoster, loginAs, queryMam } from '../support/xmpp-client.js';
import { makeTestCertificates, type TestCertificates } from '../support/test-ca.js';

async function collect(events: AsyncIterable<DocumentEvent>): Promise<DocumentEvent[]> {
  const out: DocumentEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describeWithEjabberd('pulling an account over the client protocol from ejabberd 23.01', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-pull-ej-'));
  let certs: TestCertificates;
  let ej: EjabberdHandle;
  let populated: EjabberdPopulated;
  let pulledArchive: ArchiveRecord[] = [];

  const options = (overrides: Partial<PullOptions> = {}): PullOptions => ({
    jid: 'alice@localhost',
    password: EJ_ALICE_PASSWORD,
    include: selectKinds(),
    policy: new AddressPolicy(['127.0.0.1']),
    ca: [readFileSync(certs.ca, 'utf8')],
    services: [{ host: '127.0.0.1', port: ej.c2sPort, directTls: false }],
    timeoutMs: 10_000,
    pageSize: 2,
    ...overrides,
  });

  beforeAll(async () => {
    certs = makeTestCertificates(dir);
    ej = await startEjabberd({ storage: 'sqlite', certfile: certs.combined });
    populated = await populateEjabberdAlice(ej);
  }, 120_000);

  afterAll(async () => {
    await ej?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads roster, vCard, PEP, blocklist and the archive over STARTTLS with a non-ASCII password', async () => {
    const pull = pullAccount(options());
    const events = await collect(pull.events);
    const records = events.filter((e): e is UserRecord => !['host', 'host-end', 'user', 'user-end'].includes(e.kind));

    const roster = records.find((r) => r.kind === 'roster');
    const bob = roster?.kind === 'roster' ? roster.items.find((i) => i.jid === 'bob@localhost') : undefined;
    expect(bob).toMatchObject({ name: 'Bob', subscription: 'none', ask: 'subscribe' });
    expect([...(bob?.groups ?? [])].sort()).toEqual(['Friends', 'Work']);

    const vcard = records.find((r) => r.kind === 'vcard');
    expect(vcard?.kind === 'vcard' ? vcard.vcard.children.some((c) => typeof c !== 'string' && c.name === 'FN' && textOf(c) === 'Alice Example') : false).toBe(true);

    const items = records.filter((r) => r.kind === 'pep-item').map((r) => (r.kind === 'pep-item' ? `${r.node} ${r.id}` : ''));
    expect(items).toContain('urn:xmpp:bookmarks:1 room@conference.localhost');
    expect(items).toContain('http://jabber.org/protocol/nick current');
    const bookmarksNode = records.find((r) => r.kind === 'pep-node' && r.node === 'urn:xmpp:bookmarks:1');
    expect(bookmarksNode?.kind === 'pep-node' ? bookmarksNode.config.find((f) => f.var === 'pubsub#access_model')?.values : undefined).toEqual(['whitelist']);

    const blocklist = records.find((r) => r.kind === 'blocklist');
    expect(blocklist?.kind === 'blocklist' ? blocklist.items : undefined).toEqual(['spammer@example.net']);

    const archive = records.filter((r): r is ArchiveRecord => r.kind === 'archive');
    pulledArchive = archive;
    expect(archive.map((a) => a.stanza.children.filter((c) => typeof c !== 'string' && c.name === 'body').map((c) => (typeof c === 'string' ? c : textOf(c))).join(''))).toEqual(populated.bodies);
    for (const a of archive) {
      expect(a.id).not.toBe('');
      expect(a.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      expect(a.with).toBe('bob@localhost');
    }
    // Paged two at a time: three messages need two pages, and the count was announced.
    expect(pull.notes.archiveTotal).toBe(populated.bodies.length);
  });

  it('imports into a local Prosody (SQLite), which then serves the roster, blocklist, bookmarks and archive', async () => {
    const prosody = await startProsody({ storage: 'sqlite' });
    try {
      await createUser(prosody, 'alice', 'localhost', 'new-password');
      const config = loadConfig({
        env: { XPORTA_DATA_DIR: join(dir, 'xporta'), XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'sqlite', database: join(prosody.rootDir, 'data', 'prosody.sqlite') }) },
        cwd: dir,
      });
      const storage = await openStorage(config);
      try {
        const kinds = selectKinds(undefined, 'credentials,offline,other');
        const report = await importUserDocument(storage, { host: 'localhost', user: 'alice' }, pullAccount(options({ include: kinds })).events, {
          mode: 'replace',
          dryRun: false,
          include: kinds,
          createAccount: false,
        });
        expect(report.counts.archive).toBe(populated.bodies.length);
      } finally {
        await storage.close();
      }
      const alice = await loginAs(prosody, 'alice', 'new-password');
      try {
        const roster = await getRoster(alice);
        expect(roster.find((i) => i.jid === 'bob@localhost')).toMatchObject({ subscription: 'none', ask: 'subscribe' });
        expect(await getBlocklist(alice)).toEqual(['spammer@example.net']);
        expect((await getPepItems(alice, undefined, 'urn:xmpp:bookmarks:1')).map((i) => i.id)).toEqual(['room@conference.localhost']);
        const mam = await queryMam(alice);
        expect(mam.map((m) => m.message.getChildText('body'))).toEqual(populated.bodies);
        expect(mam.map((m) => m.id)).toEqual(pulledArchive.map((a) => a.id));
        expect(mam.map((m) => m.stamp)).toEqual(pulledArchive.map((a) => a.timestamp.replace(/\.\d+Z$/, 'Z')));
      } finally {
        await alice.close();
      }
    } finally {
      await prosody.stop();
    }
  });

  it('leaves the offline messages in ejabberd', async () => {
    const count = await ej.ctl(['get_offline_count', 'alice', 'localhost']);
    expect(count.stdout.trim()).toBe(String(populated.offlineBodies.length));
  });

  it('a wrong password and an unverifiable certificate are typed errors', async () => {
    const wrong = await collect(pullAccount(options({ password: 'alice secret u' })).events).catch((e: unknown) => e);
    expect((wrong as XmppPullError).code).toBe('auth-failed');
    const { ca: _ca, ...withoutCa } = options();
    const untrusted = await collect(pullAccount(withoutCa).events).catch((e: unknown) => e);
    expect((untrusted as XmppPullError).code).toBe('tls-verify-failed');
  });
});
