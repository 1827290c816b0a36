/**
 * ejabberd as the source of a client-protocol pull, on the generation the run selects
 * (XPORTA_EJABBERD_VERSION: 23.01 in the first live pass, 24.12 in the second): STARTTLS with a
 * certificate from a CA this test makes, SCRAM with a non-ASCII password, and the account read
 * as ejabberd's modules answer (mod_roster, mod_vcard, mod_pubsub PEP, mod_blocking,
 * mod_privacy, mod_mam). The account holds every data kind issue 19's acceptance names, put
 * there by real clients: roster items with groups in each subscription state, vCard-temp with a
 * photo, the same image as XEP-0084 avatar, vcard4, PEP nodes with open, presence and whitelist
 * access (bookmarks, nick, OMEMO device list and bundle, notes), blocklist, a privacy list and
 * the archive. Imported into a local Prosody (SQLite, the run's Prosody generation), the local
 * server serves the same to a real client. Offline messages stay in ejabberd's offline store.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openStorage } from '../../src/storage/open.js';
import { importUserDocument } from '../../src/transfer/account-transfer.js';
import { AddressPolicy } from '../../src/lib/net/address-policy.js';
import { pullAccount, XmppPullError, type PullOptions } from '../../src/storage/xmpp-client/index.js';
import { selectKinds } from '../../src/transfer/account-transfer.js';
import type { ArchiveRecord, DocumentEvent, UserRecord } from '../../src/records/model.js';
import { textOf } from '../../src/records/model.js';
import { cuttingProxy } from '../support/cutting-proxy.js';
import { populateEjabberdAlice, EJ_ALICE_PASSWORD, type EjabberdPopulated } from '../support/ejabberd-populate.js';
import { describeWithEjabberd, startEjabberd, type EjabberdHandle } from '../support/ejabberd.js';
import { createUser, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { expectServedAlike, OMEMO_BUNDLE, OMEMO_DEVICELIST, populateExtraKinds, PRIVACY_LIST, readServedKinds, type ServedKinds } from '../support/pull-check.js';
import { defaultEjabberdVersion, defaultProsodyVersion } from '../support/server-versions.js';
import {
  approveSubscription,
  connectClient,
  loginAs,
  publishPep,
  setRosterItem,
  setVCard,
  subscribe,
  xml,
  type XmppClient,
} from '../support/xmpp-client.js';
import { makeTestCertificates, type TestCertificates } from '../support/test-ca.js';

const ejabberdVersion = defaultEjabberdVersion();
const prosodyVersion = defaultProsodyVersion();
/** A 1×1 PNG: the vCard PHOTO and the XEP-0084 avatar, so both agree on its id. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

/**
 * What ejabberd-populate.ts leaves out, through real clients: a contact in each subscription
 * state (dave both, erin to; bob stays pending-out, carol pending-in), a vCard with a photo, the
 * same image as an open XEP-0084 avatar, a vcard4 that says what the vCard says, a node with
 * presence access, then nick, OMEMO and a privacy list (pull-check.ts).
 */
async function populateEveryKind(ej: EjabberdHandle, host = 'localhost'): Promise<void> {
  await Promise.all(['dave', 'erin'].map((u) => ej.register(u, host, 'pw')));
  const login = (username: string, password: string, presence: boolean): Promise<XmppClient> => connectClient({ service: ej.service, domain: host, username, password, presence });
  const alice = await login('alice', EJ_ALICE_PASSWORD, false);
  const dave = await login('dave', 'pw', true);
  const erin = await login('erin', 'pw', true);
  try {
    await setRosterItem(alice, `dave@${host}`, 'Dave', ['Friends']);
    await subscribe(alice, `dave@${host}`);
    await approveSubscription(dave, `alice@${host}`);
    await subscribe(dave, `alice@${host}`);
    await approveSubscription(alice, `dave@${host}`);
    await setRosterItem(alice, `erin@${host}`, 'Erin', ['Work']);
    await subscribe(alice, `erin@${host}`);
    await approveSubscription(erin, `alice@${host}`);
    const photo = PNG.toString('base64');
    const sha1 = createHash('sha1').update(PNG).digest('hex');
    await setVCard(
      alice,
      xml(
        'vCard',
        { xmlns: 'vcard-temp' },
        xml('FN', {}, 'Alice Example'),
        xml('N', {}, xml('FAMILY', {}, 'Example'), xml('GIVEN', {}, 'Alice')),
        xml('NICKNAME', {}, 'ali'),
        xml('PHOTO', {}, xml('TYPE', {}, 'image/png'), xml('BINVAL', {}, photo)),
      ),
    );
    const open = { access_model: 'open' };
    await publishPep(alice, 'urn:xmpp:avatar:data', sha1, xml('data', { xmlns: 'urn:xmpp:avatar:data' }, photo), open);
    await publishPep(
      alice,
      'urn:xmpp:avatar:metadata',
      sha1,
      xml('metadata', { xmlns: 'urn:xmpp:avatar:metadata' }, xml('info', { id: sha1, bytes: String(PNG.length), type: 'image/png', width: '1', height: '1' })),
      open,
    );
    const vcard4 = 'urn:ietf:params:xml:ns:vcard-4.0';
    await publishPep(
      alice,
      'urn:xmpp:vcard4',
      'current',
      xml('vcard', { xmlns: vcard4 }, xml('fn', {}, xml('text', {}, 'Alice Example')), xml('n', {}, xml('surname', {}, 'Example'), xml('given', {}, 'Alice')), xml('nickname', {}, xml('text', {}, 'ali'))),
      open,
    );
    await publishPep(alice, 'urn:example:xporta:notes', 'note-1', xml('note', { xmlns: 'urn:example:xporta:notes' }, 'Buy milk & eggs'), { access_model: 'presence' });
    // ejabberd keeps the blocklist in the default privacy list: ours is an extra one.
    await populateExtraKinds(alice, { privacy: 'list' });
  } finally {
    await Promise.all([alice.close(), dave.close(), erin.close()]);
  }
}

async function collect(events: AsyncIterable<DocumentEvent>): Promise<DocumentEvent[]> {
  const out: DocumentEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describeWithEjabberd(`pulling an account over the client protocol from ejabberd ${ejabberdVersion} into a local Prosody ${prosodyVersion}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-pull-ej-'));
  let certs: TestCertificates;
  let ej: EjabberdHandle;
  /** The local server: a Prosody (SQLite) of the run's generation with XEP-0016. */
  let prosody: ProsodyHandle;
  let populated: EjabberdPopulated;
  let served: ServedKinds;

  /** xporta on the local Prosody's SQLite store. */
  const localConfig = (dataDir: string): ReturnType<typeof loadConfig> =>
    loadConfig({
      env: { XPORTA_DATA_DIR: join(dir, dataDir), XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'sqlite', database: join(prosody.rootDir, 'data', 'prosody.sqlite') }) },
      cwd: dir,
    });

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
    [ej, prosody] = await Promise.all([startEjabberd({ storage: 'sqlite', certfile: certs.combined }), startProsody({ storage: 'sqlite', extraModules: ['privacy_lists'] })]);
    // One prosodyctl at a time: two at once on the new SQLite file race to create its table.
    for (const u of ['alice', 'erin']) await createUser(prosody, u, 'localhost', 'new-password');
    populated = await populateEjabberdAlice(ej);
    await populateEveryKind(ej);
    const alice = await connectClient({ service: ej.service, domain: 'localhost', username: 'alice', password: EJ_ALICE_PASSWORD });
    try {
      served = await readServedKinds(alice);
    } finally {
      await alice.close();
    }
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled([ej?.stop(), prosody?.stop()]);
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
    expect(archive.map((a) => a.stanza.children.filter((c) => typeof c !== 'string' && c.name === 'body').map((c) => (typeof c === 'string' ? c : textOf(c))).join(''))).toEqual(populated.bodies);
    for (const a of archive) {
      expect(a.id).not.toBe('');
      expect(a.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      expect(a.with).toBe('bob@localhost');
    }
    // Paged two at a time: three messages need two pages, and the count was announced.
    expect(pull.notes.archiveTotal).toBe(populated.bodies.length);
  });

  it('the old account holds every kind the acceptance names', () => {
    expect(served.roster.map((r) => r.split(' ').slice(0, 3).join(' '))).toEqual(['bob@localhost none subscribe', 'dave@localhost both -', 'erin@localhost to -']);
    expect(served.vcard.map((f) => f.split('=')[0])).toEqual(['FN', 'N/FAMILY', 'N/GIVEN', 'NICKNAME', 'PHOTO/TYPE', 'PHOTO/BINVAL']);
    expect(new Set(Object.values(served.pep).map((n) => n.access))).toEqual(new Set(['open', 'presence', 'whitelist']));
    for (const node of ['urn:xmpp:bookmarks:1', 'urn:xmpp:avatar:data', 'urn:xmpp:avatar:metadata', 'urn:xmpp:vcard4', 'http://jabber.org/protocol/nick', OMEMO_DEVICELIST, OMEMO_BUNDLE]) {
      expect(served.pep[node]?.items.length, node).toBeGreaterThan(0);
    }
    expect(served.privacy?.lists.some((l) => l.includes(`name="${PRIVACY_LIST}"`))).toBe(true);
    expect(served.blocklist).toEqual(['spammer@example.net']);
    expect(served.archive.map((m) => m[3])).toEqual(populated.bodies);
  });

  it('imports into a local Prosody (SQLite), which then serves the same account to a real client', async () => {
    const storage = await openStorage(localConfig('xporta'));
    try {
      const kinds = selectKinds(undefined, 'credentials,offline,other');
      const pull = pullAccount(options({ include: kinds }));
      const report = await importUserDocument(storage, { host: 'localhost', user: 'alice' }, pull.events, {
        mode: 'replace',
        dryRun: false,
        include: kinds,
        createAccount: false,
      });
      expect(report.counts.archive).toBe(populated.bodies.length);
      // ejabberd's PEP does not let the owner list a node's subscriptions (XEP-0060 §8.8.1):
      // listed as refused, the only thing that is.
      for (const refusal of pull.notes.refused) expect(refusal).toMatch(/^PEP \S+ subscriptions: feature-not-implemented$/);
    } finally {
      await storage.close();
    }
    const alice = await loginAs(prosody, 'alice', 'new-password');
    try {
      expectServedAlike(await readServedKinds(alice), served, prosodyVersion === '0.12' ? 'seconds' : 'micro');
    } finally {
      await alice.close();
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

  it('a connection dropped in the middle of the archive is a typed error, and the import writes nothing', async () => {
    // The bytes of a whole archive-only pull (one message a page), then a cut past 70 % of them.
    const archiveOnly = selectKinds('archive');
    const meter = await cuttingProxy(ej.c2sPort, Number.POSITIVE_INFINITY);
    try {
      await collect(pullAccount(options({ services: [{ host: '127.0.0.1', port: meter.port, directTls: false }], pageSize: 1, include: archiveOnly })).events);
    } finally {
      meter.server.close();
    }
    const proxy = await cuttingProxy(ej.c2sPort, Math.round(meter.bytes() * 0.7));
    try {
      const storage = await openStorage(localConfig('xporta-cut'));
      try {
        const pull = pullAccount(options({ services: [{ host: '127.0.0.1', port: proxy.port, directTls: false }], pageSize: 1, include: archiveOnly }));
        const err = await importUserDocument(storage, { host: 'localhost', user: 'erin' }, pull.events, { mode: 'replace', dryRun: false, include: archiveOnly, createAccount: false }).catch(
          (e: unknown) => e,
        );
        expect(proxy.cut()).toBe(true);
        expect(err).toBeInstanceOf(XmppPullError);
        expect((err as XmppPullError).code).toBe('connection-lost');
        expect(pull.notes.archiveRead).toBeGreaterThan(0);
        expect(pull.notes.archiveRead).toBeLessThan(populated.bodies.length);
        const left: unknown[] = [];
        for await (const r of storage.readUser({ host: 'localhost', user: 'erin' }, { include: selectKinds() })) left.push(r);
        expect(left).toEqual([]);
      } finally {
        await storage.close();
      }
    } finally {
      proxy.server.close();
    }
  });
});
