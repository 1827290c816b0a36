/**
 * Issue 19's acceptance with Prosody as "the other provider", on the generation the run selects
 * (XPORTA_PROSODY_VERSION: 0.12 in the first live pass, 13 in the second): an account filled with
 * every data kind through real clients (populate.ts plus nick, OMEMO device list and bundle and a
 * privacy list), reached only over c2s with STARTTLS and a CA the test makes, pulled with
 * pullAccount and imported with importUserDocument into a local Prosody (SQLite) of the same
 * generation. A real client on the local server is then served what the old one served: roster
 * with groups and subscriptions, vCard and avatar, every PEP node with its items and access
 * model (bookmarks among them), blocklist, privacy list, and every archived message with its
 * archive id, time and message id. The old account's offline messages still wait on the old server.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { AddressPolicy } from '../../src/lib/net/address-policy.js';
import type { DocumentEvent, UserRecord } from '../../src/records/model.js';
import type { StorageBackend } from '../../src/storage/backend.js';
import { openStorage } from '../../src/storage/open.js';
import { pullAccount } from '../../src/storage/xmpp-client/index.js';
import { importUserDocument, selectKinds } from '../../src/transfer/account-transfer.js';
import { populateAccount, type PopulateSummary } from '../support/populate.js';
import { createUser, describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { expectOfflineStillWaiting, expectServedAlike, OMEMO_BUNDLE, OMEMO_DEVICELIST, populateExtraKinds, PRIVACY_LIST, readServedKinds, type ServedKinds } from '../support/pull-check.js';
import { defaultProsodyVersion } from '../support/server-versions.js';
import { installProsodyCertificate, makeTestCertificates, type TestCertificates } from '../support/test-ca.js';
import { loginAs } from '../support/xmpp-client.js';

const version = defaultProsodyVersion();
const LOCAL_PASSWORD = 'local-password';

describeWithProsody(`every data kind pulled from Prosody ${version} over c2s into a local Prosody ${version}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-pull-kinds-'));
  let certs: TestCertificates;
  let oldServer: ProsodyHandle;
  let localServer: ProsodyHandle;
  let storage: StorageBackend;
  let summary: PopulateSummary;
  let served: ServedKinds;

  beforeAll(async () => {
    certs = makeTestCertificates(dir);
    const oldDir = join(dir, 'old-prosody');
    installProsodyCertificate(certs, oldDir);
    // mod_privacy_lists (prosody-modules) gives XEP-0016 on both sides.
    [oldServer, localServer] = await Promise.all([
      startProsody({ storage: 'sqlite', dir: oldDir, extraModules: ['tls', 'privacy_lists'] }),
      startProsody({ storage: 'sqlite', extraModules: ['privacy_lists'] }),
    ]);
    summary = await populateAccount(oldServer, { messages: 24 });
    const alice = await loginAs(oldServer, 'alice', summary.alice.password);
    try {
      await populateExtraKinds(alice, { privacy: 'default' });
      served = await readServedKinds(alice);
    } finally {
      await alice.close();
    }
    await createUser(localServer, 'alice', 'localhost', LOCAL_PASSWORD);
    const config = loadConfig({
      env: {
        XPORTA_DATA_DIR: join(dir, 'xporta'),
        XPORTA_LOG_LEVEL: 'silent',
        XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'sqlite', database: join(localServer.rootDir, 'data', 'prosody.sqlite') }),
      },
      cwd: dir,
    });
    storage = await openStorage(config);
  }, 180_000);

  afterAll(async () => {
    await storage?.close();
    await Promise.allSettled([oldServer?.stop(), localServer?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the old account holds every kind the acceptance names', () => {
    expect(served.roster.map((r) => r.split(' ').slice(1, 3).join(' ')).sort()).toEqual(['both -', 'none subscribe', 'to -']);
    expect(served.vcard.map((f) => f.split('=')[0])).toEqual(['FN', 'N/FAMILY', 'N/GIVEN', 'NICKNAME', 'PHOTO/TYPE', 'PHOTO/BINVAL']);
    expect(new Set(Object.values(served.pep).map((n) => n.access))).toEqual(new Set(['open', 'presence', 'whitelist']));
    for (const node of ['urn:xmpp:bookmarks:1', 'urn:xmpp:avatar:data', 'urn:xmpp:avatar:metadata', 'urn:xmpp:vcard4', 'http://jabber.org/protocol/nick', OMEMO_DEVICELIST, OMEMO_BUNDLE]) {
      expect(served.pep[node]?.items.length, node).toBeGreaterThan(0);
    }
    expect(served.privacy?.default).toBe(PRIVACY_LIST);
    expect(served.blocklist.length).toBeGreaterThan(0);
    expect(served.archive.length).toBe(summary.archive.messages.length);
  });

  it('pulls into the local account, which then serves the same account to a real client', async () => {
    const kinds = selectKinds();
    const pull = pullAccount({
      jid: 'alice@localhost',
      password: summary.alice.password,
      include: kinds,
      policy: new AddressPolicy(['127.0.0.0/8']),
      ca: [readFileSync(certs.ca, 'utf8')],
      services: [{ host: '127.0.0.1', port: oldServer.c2sPort, directTls: false }],
      timeoutMs: 10_000,
      pageSize: 10,
    });
    const seen: DocumentEvent[] = [];
    async function* tee(): AsyncGenerator<DocumentEvent> {
      for await (const e of pull.events) {
        seen.push(e);
        yield e;
      }
    }
    const report = await importUserDocument(storage, { host: 'localhost', user: 'alice' }, tee(), {
      mode: 'replace',
      dryRun: false,
      include: selectKinds(undefined, 'credentials,offline,other'),
      createAccount: false,
    });
    expect(pull.notes.refused).toEqual([]);
    expect(pull.notes.archiveTotal).toBe(summary.archive.messages.length);
    expect(report.counts.archive).toBe(summary.archive.messages.length);
    const records = seen.filter((e): e is UserRecord => !['host', 'host-end', 'user', 'user-end'].includes(e.kind));
    const privacy = records.find((r) => r.kind === 'privacy');
    expect(privacy?.kind === 'privacy' ? [privacy.defaultList, privacy.lists.map((l) => l.name)] : undefined).toEqual([PRIVACY_LIST, [PRIVACY_LIST]]);
    // The pulled account carries no credentials: the local one keeps its own password.
    const alice = await loginAs(localServer, 'alice', LOCAL_PASSWORD);
    try {
      expectServedAlike(await readServedKinds(alice), served, version === '0.12' ? 'seconds' : 'micro');
    } finally {
      await alice.close();
    }
  });

  it("leaves the old account's offline messages waiting on the old server", async () => {
    await expectOfflineStillWaiting(oldServer, summary);
  });
});
