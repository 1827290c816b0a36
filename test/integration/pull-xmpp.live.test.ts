/**
 * Pulling an account over the client protocol from a real Prosody acting as "the other
 * provider" (the run's generation: 0.12, or 13 in the second live pass): reached only over c2s,
 * STARTTLS with a certificate signed by a CA this test makes. The pull is imported into a second
 * Prosody (SQLite store) through the HTTP route (a job, polled to its end), and what that server
 * then serves is compared with what the first one held. Error cases: wrong password, a
 * certificate that does not verify, a server without TLS, a connection dropped in the middle of
 * the archive, one pull too many at once, an archive larger than one pull may carry.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runPull, runPullImport } from '../../src/cli/pull.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import { buildApp } from '../../src/http/server.js';
import { AddressPolicy } from '../../src/lib/net/address-policy.js';
import type { StorageBackend } from '../../src/storage/backend.js';
import { openStorage } from '../../src/storage/open.js';
import { pullAccount, XmppPullError, type PullOptions } from '../../src/storage/xmpp-client/index.js';
import { importUserDocument, selectKinds } from '../../src/transfer/account-transfer.js';
import type { ArchiveRecord, DocumentEvent, UserRecord } from '../../src/records/model.js';
import { cuttingProxy } from '../support/cutting-proxy.js';
import { expectOfflineStillWaiting } from '../support/pull-check.js';
import { filesUnder } from '../support/paths.js';
import { ContractChecker } from '../support/openapi.js';
import { installProsodyCertificate, makeTestCertificates, type TestCertificates } from '../support/test-ca.js';
import { freePorts } from '../support/ports.js';
import { populateAccount, type PopulateSummary } from '../support/populate.js';
import { createUser, describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { defaultProsodyVersion } from '../support/server-versions.js';
import { getBlocklist, getPepItems, getRoster, getVCard, loginAs, queryMam } from '../support/xmpp-client.js';

const TOKEN = 'pull-test-operator-token';
const EXPORT_TOKEN = 'pull-test-export-only-token';
const IMPORT_TOKEN = 'pull-test-import-only-token';
const PATH = '/v1/users/{jid}/import-from-xmpp';
const contract = new ContractChecker();
const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex');
const NEW_PASSWORD = 'new-server-password';

async function collect(events: AsyncIterable<DocumentEvent>): Promise<DocumentEvent[]> {
  const out: DocumentEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

async function userRecords(storage: StorageBackend, user: string): Promise<UserRecord[]> {
  const out: UserRecord[] = [];
  for await (const r of storage.readUser({ host: 'localhost', user }, { include: selectKinds() })) out.push(r);
  return out;
}

interface JobAnswer {
  id: string;
  type: string;
  host: string;
  state: string;
  progress: { done: number; records: number; messages?: number; archiveTotal?: number; estimate?: number };
  result?: { counts: Record<string, number>; refused: string[]; archiveTotal?: number; source: string; dryRun: boolean; warnings: string[] };
  error?: string;
}

describeWithProsody(`pulling an account over the client protocol (Prosody ${defaultProsodyVersion()} over STARTTLS)`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-pull-'));
  let certs: TestCertificates;
  let oldServer: ProsodyHandle;
  let newServer: ProsodyHandle;
  let plainServer: ProsodyHandle;
  let summary: PopulateSummary;
  let app: FastifyInstance;
  let storage: StorageBackend;
  let config: Config;
  let silent: Server;
  let directTlsPort: number | undefined;

  /** POST …/import-from-xmpp, its answer checked against openapi.yaml. */
  const importFromXmpp = async (account: string, payload: object, token: string | undefined = TOKEN): Promise<{ statusCode: number; body: string; json: <T>() => T }> => {
    const res = await app.inject({
      method: 'POST',
      url: `/v1/users/${encodeURIComponent(account)}/import-from-xmpp`,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      payload,
    });
    contract.check('POST', PATH, res);
    return { statusCode: res.statusCode, body: res.body, json: <T>() => res.json<T>() };
  };

  /** POST /v1/xmpp-export, its answer checked against openapi.yaml. */
  const exportXmpp = async (payload: object, token: string | undefined = TOKEN): Promise<{ statusCode: number; body: string; json: <T>() => T }> => {
    const res = await app.inject({ method: 'POST', url: '/v1/xmpp-export', headers: token ? { authorization: `Bearer ${token}` } : {}, payload });
    contract.check('POST', '/v1/xmpp-export', res);
    return { statusCode: res.statusCode, body: res.body, json: <T>() => res.json<T>() };
  };

  /** Polls the job at `location` until it ends; every answer checked against openapi.yaml. */
  const finishedJob = async (location: string, on: FastifyInstance = app): Promise<JobAnswer> => {
    for (let i = 0; i < 600; i++) {
      const res = await on.inject({ method: 'GET', url: location, headers: { authorization: `Bearer ${TOKEN}` } });
      contract.check('GET', '/v1/jobs/{id}', res);
      const job = res.json<JobAnswer>();
      if (job.state !== 'running') return job;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`job ${location} did not end`);
  };

  const base = (server: ProsodyHandle, overrides: Partial<PullOptions> = {}): PullOptions => ({
    jid: 'alice@localhost',
    password: summary.alice.password,
    include: selectKinds(),
    policy: new AddressPolicy(['127.0.0.0/8']),
    ca: [readFileSync(certs.ca, 'utf8')],
    services: [{ host: '127.0.0.1', port: server.c2sPort, directTls: false }],
    timeoutMs: 10_000,
    pageSize: 7,
    ...overrides,
  });

  beforeAll(async () => {
    certs = makeTestCertificates(dir);
    // Prosody finds a VirtualHost's certificate in its `certificates` directory by the host's name.
    const oldDir = join(dir, 'old-prosody');
    installProsodyCertificate(certs, oldDir);
    // Direct TLS (XEP-0368) on a port of its own besides STARTTLS on the c2s port.
    [directTlsPort] = await freePorts(1);
    [oldServer, newServer, plainServer] = await Promise.all([
      startProsody({ storage: 'sqlite', dir: oldDir, extraModules: ['tls'], extraGlobalConfig: `c2s_direct_tls_ports = { ${directTlsPort} }` }),
      startProsody({ storage: 'sqlite' }),
      startProsody({ storage: 'sqlite' }),
    ]);
    summary = await populateAccount(oldServer, { messages: 40 });
    await createUser(newServer, 'alice', 'localhost', NEW_PASSWORD);
    await createUser(newServer, 'erin', 'localhost', NEW_PASSWORD);
    await createUser(plainServer, 'alice', 'localhost', summary.alice.password);
    // Accepts connections and never answers: the deadline case.
    silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentPort = (silent.address() as { port: number }).port;
    config = loadConfig({
      env: {
        XPORTA_DATA_DIR: join(dir, 'xporta'),
        XPORTA_LOG_LEVEL: 'silent',
        XPORTA_OUTGOING: JSON.stringify({ allow: ['127.0.0.0/8'] }),
        XPORTA_XMPP_CLIENT: JSON.stringify({
          caFile: certs.ca,
          // plain.test is no VirtualHost of that server: it answers with a stream error.
          services: [`localhost=127.0.0.1:${oldServer.c2sPort}`, `plain.test=127.0.0.1:${plainServer.c2sPort}`, `silent.test=127.0.0.1:${silentPort}`],
          pageSize: 7,
          timeoutMs: 3000,
          // One at a time: the limit test holds it with a pull that hangs.
          maxConcurrentPulls: 1,
        }),
        XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'sqlite', database: join(newServer.rootDir, 'data', 'prosody.sqlite') }),
        XPORTA_AUTH__TOKENS: JSON.stringify([
          { name: 't', sha256: sha256(TOKEN), scopes: ['export', 'import', 'admin'] },
          { name: 'e', sha256: sha256(EXPORT_TOKEN), scopes: ['export'] },
          { name: 'i', sha256: sha256(IMPORT_TOKEN), scopes: ['import'] },
        ]),
      },
      cwd: dir,
    });
    storage = await openStorage(config);
    app = buildApp({ config, storage, logger: false });
  }, 240_000);

  afterAll(async () => {
    await Promise.allSettled([app?.close()]);
    silent?.close();
    await Promise.allSettled([oldServer?.stop(), newServer?.stop(), plainServer?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads roster, vCard, PEP, blocklist and the whole archive with ids and times', async () => {
    const pull = pullAccount(base(oldServer));
    const events = await collect(pull.events);
    expect(events[0]).toEqual({ kind: 'host', jid: 'localhost' });
    expect(events[1]).toMatchObject({ kind: 'user', name: 'alice', scram: [] });
    expect(events.at(-1)).toEqual({ kind: 'host-end' });
    const records = events.filter((e): e is UserRecord => !['host', 'host-end', 'user', 'user-end'].includes(e.kind));
    const roster = records.find((r) => r.kind === 'roster');
    const pulledRoster = roster?.kind === 'roster' ? roster.items.map((i) => ({ jid: i.jid, subscription: i.subscription, ask: i.ask, groups: [...i.groups].sort() })) : [];
    expect(pulledRoster.sort((a, b) => a.jid.localeCompare(b.jid))).toEqual(
      summary.roster.items.map((i) => ({ jid: i.jid, subscription: i.subscription, ask: i.ask, groups: [...i.groups] })),
    );
    const archive = records.filter((r): r is ArchiveRecord => r.kind === 'archive');
    expect(archive.map((a) => [a.id, a.timestamp])).toEqual(summary.archive.messages.map((m) => [m.id, m.timestamp]));
    expect(pull.notes.archiveRead).toBe(summary.archive.messages.length);
    expect(pull.notes.archiveTotal).toBe(summary.archive.messages.length);
    const blocklist = records.find((r) => r.kind === 'blocklist');
    expect(blocklist?.kind === 'blocklist' ? [...blocklist.items].sort() : undefined).toEqual([...summary.blocklist].sort());
    const bookmarks = records.filter((r) => r.kind === 'pep-item' && r.node === 'urn:xmpp:bookmarks:1').map((r) => (r.kind === 'pep-item' ? r.id : ''));
    expect(bookmarks.sort()).toEqual(summary.pep.find((n) => n.node === 'urn:xmpp:bookmarks:1')?.items.map((i) => i.id).sort());
    expect(records.some((r) => r.kind === 'vcard')).toBe(true);
  });

  it('imports the pulled account into the local server through POST /v1/users/{jid}/import-from-xmpp, as a job', async () => {
    // The account held by another operation: told so at once, no job made.
    const held = await (app as unknown as { ctx: { locks: { tryAcquire(jid: string, mode: 'exclusive'): Promise<{ release(): void } | undefined> } } }).ctx.locks.tryAcquire('alice@localhost', 'exclusive');
    const busy = await importFromXmpp('alice@localhost', { jid: 'alice@localhost', password: summary.alice.password });
    held?.release();
    expect(busy.statusCode).toBe(409);

    const res = await importFromXmpp('alice@localhost', { jid: 'alice@localhost', password: summary.alice.password, mode: 'replace' });
    expect(res.statusCode, res.body).toBe(202);
    const started = res.json<JobAnswer>();
    expect(res.body).not.toContain(summary.alice.password);
    expect(started).toMatchObject({ type: 'xmpp-import', host: 'alice@localhost', state: 'running' });
    const job = await finishedJob(`/v1/jobs/${started.id}`);
    expect(job.state, job.error).toBe('succeeded');
    // Progress reached the archive's size as the old server announced it.
    expect(job.progress).toMatchObject({ done: 1, messages: summary.archive.messages.length, archiveTotal: summary.archive.messages.length, estimate: 1 });
    expect(job.progress.records).toBeGreaterThan(summary.archive.messages.length);
    const report = job.result as NonNullable<JobAnswer['result']>;
    expect(report.counts.archive).toBe(summary.archive.messages.length);
    expect(report.archiveTotal).toBe(summary.archive.messages.length);
    expect(report.source).toBe('alice@localhost');
    // Prosody as the rig runs it has no XEP-0016 module: refused, listed, not fatal.
    expect(report.refused).toEqual(['privacy lists: service-unavailable']);

    // The local account keeps its own password: the pull carries no credentials.
    const alice = await loginAs(newServer, 'alice', NEW_PASSWORD);
    try {
      const roster = await getRoster(alice);
      expect(roster.map((i) => ({ jid: i.jid, subscription: i.subscription, groups: [...i.groups].sort() })).sort((a, b) => a.jid.localeCompare(b.jid))).toEqual(
        summary.roster.items.map((i) => ({ jid: i.jid, subscription: i.subscription, groups: [...i.groups] })),
      );
      expect((await getBlocklist(alice)).sort()).toEqual([...summary.blocklist].sort());
      const vcard = await getVCard(alice);
      expect(vcard?.getChildText('FN')).toBe('Alice Example');
      const mam = await queryMam(alice, { max: 50 });
      expect(mam.map((m) => [m.id, m.stamp])).toEqual(summary.archive.messages.map((m) => [m.id, m.timestamp]));
      expect(mam.map((m) => m.message.attrs.id)).toEqual(summary.archive.messages.map((m) => m.messageId));
      for (const node of summary.pep.filter((n) => n.items.length > 0)) {
        const items = await getPepItems(alice, undefined, node.node);
        expect(items.map((i) => i.id).sort(), node.node).toEqual(node.items.map((i) => i.id).sort());
      }
    } finally {
      await alice.close();
    }
  });

  it('xporta pull writes the account as a XEP-0227 document that the reader accepts', async () => {
    const passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, `${summary.alice.password}\n`, { mode: 0o600 });
    const chunks: Buffer[] = [];
    const out = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    });
    const notes = await runPull(config, { jid: 'alice@localhost', passwordFile, exclude: 'pep' }, out);
    expect(notes.archiveRead).toBe(summary.archive.messages.length);
    const events = await collect(readDocument(Readable.from([Buffer.concat(chunks)])));
    const archive = events.filter((e): e is ArchiveRecord => e.kind === 'archive');
    expect(archive.map((a) => [a.id, a.timestamp])).toEqual(summary.archive.messages.map((m) => [m.id, m.timestamp]));
    expect(events.some((e) => e.kind === 'pep-item')).toBe(false);
    rmSync(passwordFile);
  });

  it('xporta import --from-xmpp runs the same pull-import (a dry run here: nothing written)', async () => {
    const passwordFile = join(dir, 'password-import');
    writeFileSync(passwordFile, `${summary.alice.password}\n`, { mode: 0o600 });
    try {
      const report = await runPullImport(config, { jid: 'erin@localhost', from: 'alice@localhost', passwordFile, dryRun: true, include: 'roster,archive' });
      expect(report.dryRun).toBe(true);
      expect(report.counts.archive).toBe(summary.archive.messages.length);
      expect(report.archiveTotal).toBe(summary.archive.messages.length);
      expect(report.source).toBe('alice@localhost');
      expect(await userRecords(storage, 'erin')).toEqual([]);
    } finally {
      rmSync(passwordFile);
    }
  });

  it('POST /v1/xmpp-export streams the remote account as a XEP-0227 document', async () => {
    const res = await exportXmpp({ jid: 'alice@localhost', password: summary.alice.password, exclude: 'pep' });
    expect(res.statusCode).toBe(200);
    const events = await collect(readDocument(Readable.from([Buffer.from(res.body)])));
    expect(events.filter((e) => e.kind === 'archive').map((e) => (e.kind === 'archive' ? e.id : ''))).toEqual(summary.archive.messages.map((m) => m.id));
    expect(events.some((e) => e.kind === 'pep-item')).toBe(false);
    expect(res.body).not.toContain(summary.alice.password);
    expect((await exportXmpp({ jid: 'alice@localhost', password: 'Wr0ng-Secret-Pa55' })).statusCode).toBe(422);
    expect((await exportXmpp({ jid: 'alice@plain.test', password: 'x' })).statusCode).toBe(502);
    expect((await exportXmpp({ jid: 'localhost', password: 'x' })).statusCode).toBe(400);
    expect((await exportXmpp({ jid: 'alice@localhost', password: 'x' }, '')).statusCode).toBe(401);
    expect((await exportXmpp({ jid: 'alice@localhost', password: 'x' }, IMPORT_TOKEN)).statusCode).toBe(403);
  });

  it('one pull more than xmppClient.maxConcurrentPulls is answered 429, for every face', async () => {
    // A pull from the server that never answers holds the one slot until its step deadline.
    const hanging = importFromXmpp('erin@localhost', { jid: 'alice@silent.test', password: 'x' });
    const hangingExport = new Promise((r) => setTimeout(r, 200)).then(() => exportXmpp({ jid: 'alice@silent.test', password: 'x' }));
    await new Promise((r) => setTimeout(r, 300));
    const refused = await importFromXmpp('alice@localhost', { jid: 'alice@localhost', password: summary.alice.password });
    expect(refused.statusCode, refused.body).toBe(429);
    expect(refused.json<{ detail: string }>().detail).toMatch(/maxConcurrentPulls/);
    expect((await hangingExport).statusCode).toBe(429);
    expect((await hanging).statusCode).toBe(504);
    expect((await exportXmpp({ jid: 'alice@silent.test', password: 'x' })).statusCode).toBe(504);
    expect(await userRecords(storage, 'erin')).toEqual([]);
  });

  it('an archive larger than xmppClient.maxArchiveMessages fails the job and writes nothing', async () => {
    const limitedConfig: Config = { ...config, dataDir: join(dir, 'xporta-limited'), xmppClient: { ...config.xmppClient, maxArchiveMessages: 10 } };
    // A storage of its own: closing this app closes it.
    const limited = buildApp({ config: limitedConfig, storage: await openStorage(limitedConfig), logger: false });
    try {
      const res = await limited.inject({
        method: 'POST',
        url: '/v1/users/erin%40localhost/import-from-xmpp',
        headers: { authorization: `Bearer ${TOKEN}` },
        payload: { jid: 'alice@localhost', password: summary.alice.password },
      });
      expect(res.statusCode, res.body).toBe(202);
      const job = await finishedJob(res.headers.location as string, limited);
      expect(job.state).toBe('failed');
      expect(job.error).toMatch(new RegExp(`holds ${summary.archive.messages.length} messages, more than the 10 .*maxArchiveMessages.*nothing was written`));
      expect(job.progress.archiveTotal === undefined || job.progress.archiveTotal === summary.archive.messages.length).toBe(true);
      expect(await userRecords(storage, 'erin')).toEqual([]);
      for (const file of [...filesUnder(join(dir, 'xporta')), ...filesUnder(join(dir, 'xporta-limited'))]) expect(readFileSync(file, 'latin1'), file).not.toContain(summary.alice.password);
    } finally {
      await limited.close();
    }
  });

  it('leaves the old account offline messages waiting on the old server', async () => {
    await expectOfflineStillWaiting(oldServer, summary);
  });

  it('a wrong password is a clear error, changes nothing and leaves the password nowhere', async () => {
    const wrong = 'Wr0ng-Secret-Pa55';
    const err = await collect(pullAccount(base(oldServer, { password: wrong })).events).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XmppPullError);
    expect((err as XmppPullError).code).toBe('auth-failed');
    expect(String((err as Error).message)).not.toContain(wrong);

    const res = await importFromXmpp('erin@localhost', { jid: 'alice@localhost', password: wrong });
    expect(res.statusCode).toBe(422);
    expect(res.json<{ type: string }>().type).toBe('urn:xporta:problem:xmpp-auth-failed');
    expect(res.body).not.toContain(wrong);
    expect(await userRecords(storage, 'erin')).toEqual([]);
    for (const file of filesUnder(join(dir, 'xporta'))) expect(readFileSync(file, 'latin1'), file).not.toContain(wrong);
    expect(await oldServer.logTail(400)).not.toContain(wrong);
    // Nor the right one, used by the successful import earlier (audit log, token store…).
    for (const file of filesUnder(join(dir, 'xporta'))) expect(readFileSync(file, 'latin1'), file).not.toContain(summary.alice.password);
  });

  it('answers the documented problems for bad requests and unreachable or silent servers', async () => {
    const ok = { jid: 'alice@localhost', password: summary.alice.password };
    expect((await importFromXmpp('erin@localhost', { jid: 'alice@localhost' })).statusCode).toBe(400);
    expect((await importFromXmpp('erin@localhost', { ...ok, extra: 1 })).statusCode).toBe(400);
    expect((await importFromXmpp('erin@localhost', ok, '')).statusCode).toBe(401);
    expect((await importFromXmpp('erin@localhost', ok, EXPORT_TOKEN)).statusCode).toBe(403);
    expect((await importFromXmpp('nobody@localhost', ok)).statusCode).toBe(404);
    const stranger = await importFromXmpp('erin@localhost', { jid: 'alice@plain.test', password: 'x' });
    expect(stranger.statusCode).toBe(502);
    expect(stranger.json<{ type: string }>().type).toBe('urn:xporta:problem:xmpp-protocol');
    const mute = await importFromXmpp('erin@localhost', { jid: 'alice@silent.test', password: 'x' });
    expect(mute.statusCode).toBe(504);
    expect(await userRecords(storage, 'erin')).toEqual([]);
    expect(contract.missing().filter((k) => k.includes(PATH) || k.includes('/v1/xmpp-export'))).toEqual([]);
  });

  it('connects with direct TLS (XEP-0368) too', async () => {
    const pull = pullAccount(base(oldServer, { services: [{ host: '127.0.0.1', port: directTlsPort ?? 0, directTls: true }], include: selectKinds('roster,blocklist') }));
    const events = await collect(pull.events);
    const blocklist = events.find((e) => e.kind === 'blocklist');
    expect(blocklist?.kind === 'blocklist' ? [...blocklist.items].sort() : undefined).toEqual([...summary.blocklist].sort());
    const { ca: _ca, ...withoutCa } = base(oldServer, { services: [{ host: '127.0.0.1', port: directTlsPort ?? 0, directTls: true }] });
    const err = await collect(pullAccount(withoutCa).events).catch((e: unknown) => e);
    expect((err as XmppPullError).code).toBe('tls-verify-failed');
  });

  it('a certificate that does not verify is refused (no CA given)', async () => {
    const { ca: _ca, ...withoutCa } = base(oldServer);
    const err = await collect(pullAccount(withoutCa).events).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XmppPullError);
    expect((err as XmppPullError).code).toBe('tls-verify-failed');
  });

  it('a server without TLS is refused unless plaintext is explicitly allowed', async () => {
    const err = await collect(pullAccount(base(plainServer)).events).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XmppPullError);
    expect((err as XmppPullError).code).toBe('tls-unavailable');
    const events = await collect(pullAccount(base(plainServer, { allowPlaintext: true, include: selectKinds('roster') })).events);
    expect(events.map((e) => e.kind)).toContain('user-end');
  });

  it('a pull longer than its total deadline is stopped with a timeout', async () => {
    const err = await collect(pullAccount(base(oldServer, { totalTimeoutMs: 1 })).events).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XmppPullError);
    expect((err as XmppPullError).code).toBe('timeout');
  });

  it('the outgoing policy refuses loopback unless allowed', async () => {
    const err = await collect(pullAccount(base(oldServer, { policy: new AddressPolicy([]) })).events).catch((e: unknown) => e);
    expect((err as XmppPullError).code).toBe('address-refused');
  });

  it('a connection dropped in the middle of the archive fails the import and writes nothing', async () => {
    // How many bytes a whole archive-only pull takes, then a cut at 60 % of it: inside the archive.
    const archiveOnly = selectKinds('archive');
    const meter = await cuttingProxy(oldServer.c2sPort, Number.POSITIVE_INFINITY);
    try {
      await collect(pullAccount(base(oldServer, { services: [{ host: '127.0.0.1', port: meter.port, directTls: false }], pageSize: 5, include: archiveOnly })).events);
    } finally {
      meter.server.close();
    }
    const proxy = await cuttingProxy(oldServer.c2sPort, Math.round(meter.bytes() * 0.6));
    try {
      const pull = pullAccount(base(oldServer, { services: [{ host: '127.0.0.1', port: proxy.port, directTls: false }], pageSize: 5, include: archiveOnly }));
      const err = await importUserDocument(storage, { host: 'localhost', user: 'erin' }, pull.events, {
        mode: 'replace',
        dryRun: false,
        include: archiveOnly,
        createAccount: false,
      }).catch((e: unknown) => e);
      expect(proxy.cut()).toBe(true);
      expect(err).toBeInstanceOf(XmppPullError);
      expect((err as XmppPullError).code).toBe('connection-lost');
      expect(pull.notes.archiveRead).toBeGreaterThan(0);
      expect(pull.notes.archiveRead).toBeLessThan(summary.archive.messages.length);
      expect(await userRecords(storage, 'erin')).toEqual([]);
    } finally {
      proxy.server.close();
    }
  });
});
