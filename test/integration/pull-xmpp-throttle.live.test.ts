/**
 * A source server that throttles, on the Prosody generation the run selects: a real Prosody
 * with a test-only module (written here into a plugin directory its config names) that answers
 * xporta's pull sessions with `<error type='wait'><resource-constraint/></error>`: every other
 * roster, vCard, pubsub and MAM request, so each MAM page is refused once before it is served;
 * and for the accounts listed in `xporta_throttle_always`, every MAM query. The first pull
 * retries with backoff and carries the whole archive, ids and times kept; the second fails with
 * a clear `throttled` error after its attempts, writes nothing, and leaves the password on no
 * disk and in no log.
 *
 * The destination is a second VirtualHost of the same server's SQLite store (the pull is a move
 * from localhost to local.test), so no second server is started.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { AddressPolicy } from '../../src/lib/net/address-policy.js';
import type { ArchiveRecord, DocumentEvent, UserRecord } from '../../src/records/model.js';
import type { StorageBackend } from '../../src/storage/backend.js';
import { openStorage } from '../../src/storage/open.js';
import { pullAccount, XmppPullError, type PullOptions } from '../../src/storage/xmpp-client/index.js';
import { importUserDocument, selectKinds } from '../../src/transfer/account-transfer.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { accountDocument } from '../support/documents.js';
import { filesUnder } from '../support/paths.js';
import { describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { defaultProsodyVersion } from '../support/server-versions.js';
import { installProsodyCertificate, makeTestCertificates, type TestCertificates } from '../support/test-ca.js';
import { loginAs, queryMam } from '../support/xmpp-client.js';

const version = defaultProsodyVersion();
const MESSAGES = 23;
const PASSWORDS = { alice: 'throttled-but-patient-Pa55', stuck: 'never-gets-through-Pa55' } as const;

/**
 * Throttles the IQs of sessions whose resource is xporta's (`xporta-…`), so the clients that
 * fill and check the account are served normally. It hooks `iq/bare/<ns>:<name>` above the
 * modules that answer: Prosody fires that event first for a request to the account itself
 * (bare JID or no `to`). Works on 0.12 and 13 (util.stanza, module:get_option_set).
 */
const THROTTLE_MODULE = `-- Test-only (xporta test/integration/pull-xmpp-throttle.live.test.ts).
local st = require "util.stanza";
local always = module:get_option_set("xporta_throttle_always", {});
local counts = {};
local function throttle(event)
	local origin, stanza = event.origin, event.stanza;
	if origin.type ~= "c2s" or not (origin.resource or ""):match("^xporta%-") then return; end
	local payload = stanza.tags[1];
	local xmlns = payload and payload.attr.xmlns or "";
	local key = (origin.full_jid or "") .. " " .. xmlns;
	counts[key] = (counts[key] or 0) + 1;
	local forever = xmlns == "urn:xmpp:mam:2" and always:contains(origin.username);
	if forever or counts[key] % 2 == 1 then
		module:log("info", "xporta-throttle: %s request %d of %s", xmlns, counts[key], origin.username);
		origin.send(st.error_reply(stanza, "wait", "resource-constraint", "slow down"));
		return true;
	end
end
for _, name in ipairs({ "urn:xmpp:mam:2:query", "jabber:iq:roster:query", "vcard-temp:vCard",
		"http://jabber.org/protocol/pubsub:pubsub", "http://jabber.org/protocol/pubsub#owner:pubsub" }) do
	module:hook("iq/bare/" .. name, throttle, 100);
end
`;

async function collected(events: AsyncIterable<DocumentEvent>): Promise<DocumentEvent[]> {
  const out: DocumentEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

async function* asEvents(events: readonly DocumentEvent[]): AsyncGenerator<DocumentEvent> {
  yield* events;
}

describeWithProsody(`pulling from a Prosody ${version} that throttles`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-pull-throttle-'));
  let certs: TestCertificates;
  let server: ProsodyHandle;
  let storage: StorageBackend;
  const xportaDir = join(dir, 'xporta');

  const options = (user: keyof typeof PASSWORDS, overrides: Partial<PullOptions> = {}): PullOptions => ({
    jid: `${user}@localhost`,
    password: PASSWORDS[user],
    include: selectKinds(undefined, 'credentials,offline,other'),
    policy: new AddressPolicy(['127.0.0.0/8']),
    ca: [readFileSync(certs.ca, 'utf8')],
    services: [{ host: '127.0.0.1', port: server.c2sPort, directTls: false }],
    timeoutMs: 10_000,
    pageSize: 5,
    backoffMs: 20,
    ...overrides,
  });

  const userRecords = async (host: string, user: string): Promise<UserRecord[]> => {
    const out: UserRecord[] = [];
    for await (const r of storage.readUser({ host, user }, { include: selectKinds() })) out.push(r);
    return out;
  };

  const throttledLines = async (): Promise<string[]> => (await server.logTail(2000)).split('\n').filter((l) => l.includes('xporta-throttle:'));

  beforeAll(async () => {
    certs = makeTestCertificates(dir);
    const serverDir = join(dir, 'prosody');
    const plugins = join(dir, 'plugins');
    installProsodyCertificate(certs, serverDir);
    mkdirSync(plugins);
    writeFileSync(join(plugins, 'mod_xporta_throttle.lua'), THROTTLE_MODULE);
    server = await startProsody({
      storage: 'sqlite',
      dir: serverDir,
      hosts: ['localhost', 'local.test'],
      extraModules: ['tls', 'xporta_throttle'],
      extraGlobalConfig: [`plugin_paths = { ${JSON.stringify(plugins)} }`, 'xporta_throttle_always = { "stuck" }'].join('\n'),
    });
    const config = loadConfig({
      env: {
        XPORTA_DATA_DIR: xportaDir,
        XPORTA_LOG_LEVEL: 'silent',
        XPORTA_HOSTS: JSON.stringify({ localhost: { passwordHash: 'SHA-1' }, 'local.test': { passwordHash: 'SHA-1' } }),
        XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'sqlite', database: join(serverDir, 'data', 'prosody.sqlite') }),
      },
      cwd: dir,
    });
    storage = await openStorage(config);
    // Both source accounts, every data kind and an archive, through xporta's own import.
    for (const user of ['alice', 'stuck'] as const) {
      const doc = accountDocument({ host: 'localhost', user, password: PASSWORDS[user], archiveCount: MESSAGES });
      await importUserDocument(storage, { host: 'localhost', user }, readDocument(Readable.from([Buffer.from(doc)])), {
        mode: 'replace',
        dryRun: false,
        include: selectKinds(),
        createAccount: true,
      });
    }
  }, 120_000);

  afterAll(async () => {
    await storage?.close();
    await server?.stop();
    if (process.env.XPORTA_KEEP_TEST_DATA !== "1") rmSync(dir, { recursive: true, force: true });
  });

  it('retries each throttled request with backoff and carries the whole archive, ids and times kept', async () => {
    const client = await loginAs(server, 'alice', PASSWORDS.alice);
    const served = await queryMam(client).finally(() => client.close());
    expect(served).toHaveLength(MESSAGES);

    // Read whole before the import, as the core's pull-import spools it: no store transaction is
    // open while the pull runs (Prosody 13 writes to this SQLite file at each login meanwhile).
    const pull = pullAccount(options('alice'));
    const pulled = await collected(pull.events);
    const report = await importUserDocument(storage, { host: 'local.test', user: 'alice' }, asEvents(pulled), {
      mode: 'replace',
      dryRun: false,
      include: selectKinds(undefined, 'credentials,offline,other'),
      createAccount: true,
    });
    // No XEP-0016 module on this server: refused at once, not retried.
    expect(pull.notes.refused).toEqual(['privacy lists: service-unavailable']);
    expect(pull.notes.archiveRead).toBe(MESSAGES);
    expect(pull.notes.archiveTotal).toBe(MESSAGES);
    expect(report.counts.archive).toBe(MESSAGES);
    const records = await userRecords('local.test', 'alice');
    const archive = records.filter((r): r is ArchiveRecord => r.kind === 'archive');
    expect(archive.map((a) => [a.id, a.timestamp.replace(/\.\d+Z$/, 'Z')])).toEqual(served.map((m) => [m.id, (m.stamp ?? '').replace(/\.\d+Z$/, 'Z')]));
    expect(records.map((r) => r.kind)).toEqual(expect.arrayContaining(['roster', 'vcard', 'pep-node', 'pep-item', 'blocklist']));
    // Every MAM page was refused once before it was served, and so was every other roster,
    // vCard and pubsub request.
    const aliceLines = (await throttledLines()).filter((l) => l.includes('of alice'));
    expect(aliceLines.filter((l) => l.includes('urn:xmpp:mam:2 ')).length).toBeGreaterThanOrEqual(Math.ceil(MESSAGES / 5));
    for (const ns of ['jabber:iq:roster', 'vcard-temp', 'http://jabber.org/protocol/pubsub ', 'http://jabber.org/protocol/pubsub#owner']) {
      expect(aliceLines.some((l) => l.includes(`xporta-throttle: ${ns}`)), ns).toBe(true);
    }
  });

  it('a server that never stops throttling the archive: a clear error after the attempts, nothing written, the password nowhere', async () => {
    const before = (await throttledLines()).length;
    const started = Date.now();
    const pull = pullAccount(options('stuck', { throttleAttempts: 3 }));
    const err = await collected(pull.events)
      .then((pulled) =>
        importUserDocument(storage, { host: 'local.test', user: 'stuck' }, asEvents(pulled), {
          mode: 'replace',
          dryRun: false,
          include: selectKinds(undefined, 'credentials,offline,other'),
          createAccount: true,
        }),
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XmppPullError);
    expect((err as XmppPullError).code).toBe('throttled');
    expect((err as XmppPullError).message).toContain('archive: still resource-constraint after 3 attempts');
    expect((err as XmppPullError).message).not.toContain(PASSWORDS.stuck);
    // Three attempts with 20 and 40 ms between them, not an unbounded wait.
    expect(Date.now() - started).toBeLessThan(10_000);
    const stuckLines = (await throttledLines()).slice(before).filter((l) => l.includes('urn:xmpp:mam:2') && l.includes('of stuck'));
    expect(stuckLines).toHaveLength(3);
    // The roster, vCard and PEP were read before the archive failed: none of it was written.
    expect(await storage.userExists({ host: 'local.test', user: 'stuck' })).toBe(false);
    expect(await userRecords('local.test', 'stuck')).toEqual([]);
    // Every file the test made: xporta's data dir (if any), Prosody's data and log (not its admin socket).
    for (const file of filesUnder(dir).filter((f) => statSync(f).isFile())) {
      for (const password of Object.values(PASSWORDS)) expect(readFileSync(file, 'latin1'), file).not.toContain(password);
    }
  });
});
