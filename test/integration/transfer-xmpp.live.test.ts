/**
 * Remote-to-remote moves over the client protocol between two real servers, each acting as
 * "another provider" that xporta reaches only over c2s with STARTTLS (certificates from CAs this
 * test makes): Prosody 0.12 serving p.example and ejabberd 23.01 serving e.example.
 *
 * - Prosody → ejabberd through `POST /v1/transfers/xmpp` with `move: true`;
 * - ejabberd → Prosody through `xporta transfer … --move` (runTransfer).
 *
 * The old account is filled through a real client: a roster of two contacts, a vCard, XEP-0402
 * bookmarks (whitelist), a blocklist, private XML and archived messages. The rig's servers do not
 * federate (no s2s between them), so the two contacts have their accounts on the new account's
 * server, where the new account's subscription requests are delivered without s2s; they are
 * logged in with presence and must receive the request carrying `<moved><old-jid/></moved>`.
 * Afterwards a real client on the new account reads back what was written, the old account's
 * `urn:xmpp:moved:1` node holds the statement, and the report lists the archive as not carried.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { createServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runTransfer } from '../../src/cli/transfer.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import type { RemoteTransferReport } from '../../src/core/remote-transfer.js';
import { buildApp } from '../../src/http/server.js';
import { openStorage } from '../../src/storage/open.js';
import { describeWithEjabberd, startEjabberd, type EjabberdHandle } from '../support/ejabberd.js';
import { ContractChecker } from '../support/openapi.js';
import { filesUnder } from '../support/paths.js';
import { createUser, describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { makeTestCertificates } from '../support/test-ca.js';
import {
  block,
  getBlocklist,
  getPepItems,
  getPrivate,
  getRoster,
  getVCard,
  loginAs,
  publishPep,
  sendMessage,
  setPrivate,
  setRosterItem,
  setVCard,
  xml,
  XmppStanzaError,
  type XmppClient,
} from '../support/xmpp-client.js';

const TOKEN = 'transfer-test-operator-token';
const EXPORT_TOKEN = 'transfer-test-export-only-token';
const PATH = '/v1/transfers/xmpp';
const P = 'p.example';
const E = 'e.example';
const OLD_PASSWORD = 'old-Secret-4711';
const NEW_PASSWORD = 'new-Secret-0815';
const CONTACT_PASSWORD = 'contact-password';
const NS_MOVED = 'urn:xmpp:moved:1';
const NS_BOOKMARKS2 = 'urn:xmpp:bookmarks:1';
const ROOM = 'room@conference.example.org';
const contract = new ContractChecker();
const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex');

type Server = Pick<ProsodyHandle, 'service' | 'hosts'>;

/** Fills `user` on `server` as a client would, with `contactDomain`'s bob and carol as contacts. */
async function fillOldAccount(server: Server, user: string, contactDomain: string): Promise<void> {
  const c = await loginAs(server, user, OLD_PASSWORD);
  try {
    await setRosterItem(c, `bob@${contactDomain}`, 'Bob', ['Friends']);
    await setRosterItem(c, `carol@${contactDomain}`, 'Carol', ['Friends', 'Work']);
    await setVCard(c, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Alice Example'), xml('NICKNAME', {}, 'al')));
    await publishPep(c, NS_BOOKMARKS2, ROOM, xml('conference', { xmlns: NS_BOOKMARKS2, name: 'The Room', autojoin: 'true' }, xml('nick', {}, 'al')), {
      persist_items: 'true',
      access_model: 'whitelist',
    });
    await block(c, ['spammer@example.net']);
    await setPrivate(c, xml('storage', { xmlns: 'storage:rosternotes' }, xml('note', { jid: `bob@${contactDomain}` }, 'met at the conference')));
    // Archived on the old server (to a local account: no s2s needed).
    for (const body of ['one', 'two', 'three']) await sendMessage(c, `archivist@${server.hosts[0] ?? ''}`, body);
  } finally {
    await c.close();
  }
}

/** The new account as a real client sees it after the transfer. */
async function expectWritten(server: Server, user: string, contactDomain: string): Promise<void> {
  const c = await loginAs(server, user, NEW_PASSWORD);
  try {
    const roster = (await getRoster(c)).sort((a, b) => a.jid.localeCompare(b.jid));
    expect(roster.map((i) => ({ jid: i.jid, name: i.name, groups: [...i.groups].sort(), ask: i.ask }))).toEqual([
      { jid: `bob@${contactDomain}`, name: 'Bob', groups: ['Friends'], ask: 'subscribe' },
      { jid: `carol@${contactDomain}`, name: 'Carol', groups: ['Friends', 'Work'], ask: 'subscribe' },
    ]);
    expect((await getVCard(c))?.getChildText('FN')).toBe('Alice Example');
    const bookmarks = await getPepItems(c, undefined, NS_BOOKMARKS2);
    expect(bookmarks.map((b) => b.id)).toEqual([ROOM]);
    expect(bookmarks[0]?.payload?.attrs.name).toBe('The Room');
    expect(await getBlocklist(c)).toEqual(['spammer@example.net']);
    expect((await getPrivate(c, 'storage', 'storage:rosternotes'))?.getChild('note')?.text()).toBe('met at the conference');
  } finally {
    await c.close();
  }
}

/** The `default` of an account's XEP-0313 preferences, as its own client reads them. */
async function mamDefault(server: Server, user: string, password: string): Promise<string | undefined> {
  const c = await loginAs(server, user, password);
  try {
    return (await c.iq(xml('iq', { type: 'get' }, xml('prefs', { xmlns: 'urn:xmpp:mam:2' })))).getChild('prefs', 'urn:xmpp:mam:2')?.attrs.default;
  } finally {
    await c.close();
  }
}

/** The moved statement on the old account, read by the old account's own client. */
async function statementOn(server: Server, user: string): Promise<string | undefined> {
  const c = await loginAs(server, user, OLD_PASSWORD);
  try {
    const items = await getPepItems(c, undefined, NS_MOVED);
    const current = items.find((i) => i.id === 'current');
    return current?.payload?.getChildText('new-jid') ?? undefined;
  } catch (err) {
    if (err instanceof XmppStanzaError && err.condition === 'item-not-found') return undefined;
    throw err;
  } finally {
    await c.close();
  }
}

/** A contact's subscription request from `from`, with the `<moved/>` it carried. */
function movedRequestFrom(contact: XmppClient, from: string): Promise<string | undefined> {
  return contact
    .waitFor((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && (s.attrs.from ?? '').split('/')[0] === from, 10_000)
    .then((s) => s.getChild('moved', NS_MOVED)?.getChildText('old-jid') ?? undefined);
}

function expectReport(report: RemoteTransferReport, from: string, to: string): void {
  expect(report.from).toBe(from);
  expect(report.to).toBe(to);
  expect(report.written).toMatchObject({ roster: 2, vcard: 1, blocklist: 1, private: 1 });
  expect(report.written.pep).toBeGreaterThanOrEqual(1);
  expect(report.archiveTotal).toBe(3);
  // Both servers of the rig archive by default ('always' in ejabberd's config, Prosody's default 'roster' or 'always').
  expect(report.mamPreferences?.default).toMatch(/^(always|roster)$/);
  expect(report.notCarried).toContain("3 archived messages — a remote account's archive cannot be written over the client protocol");
  const domain = to.split('@')[1] ?? '';
  expect(report.moved?.statement).toEqual({ node: NS_MOVED, item: 'current', newJid: to });
  expect([...(report.moved?.notified ?? [])].sort()).toEqual([`bob@${domain}`, `carol@${domain}`]);
}

describeWithProsody('remote-to-remote transfer over the client protocol', () => {
  describeWithEjabberd('XEP-0283 moves between Prosody 0.12 and ejabberd 23.01', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xporta-transfer-'));
    let prosody: ProsodyHandle;
    let ej: EjabberdHandle;
    let config: Config;
    let app: FastifyInstance;
    let log: WriteStream;

    let silent: NetServer;

    const transfer = async (payload: object, token: string | undefined = TOKEN): Promise<{ statusCode: number; body: string; json: <T>() => T }> => {
      const res = await app.inject({ method: 'POST', url: PATH, headers: token ? { authorization: `Bearer ${token}` } : {}, payload });
      contract.check('POST', PATH, res);
      return { statusCode: res.statusCode, body: res.body, json: <T>() => res.json<T>() };
    };

    beforeAll(async () => {
      mkdirSync(join(dir, 'p'));
      mkdirSync(join(dir, 'e'));
      const pCerts = makeTestCertificates(join(dir, 'p'), P);
      const eCerts = makeTestCertificates(join(dir, 'e'), E);
      const prosodyDir = join(dir, 'prosody');
      mkdirSync(join(prosodyDir, 'certs'), { recursive: true });
      copyFileSync(pCerts.cert, join(prosodyDir, 'certs', `${P}.crt`));
      copyFileSync(pCerts.key, join(prosodyDir, 'certs', `${P}.key`));
      const cas = join(dir, 'cas.crt');
      writeFileSync(cas, readFileSync(pCerts.ca, 'utf8') + readFileSync(eCerts.ca, 'utf8'));
      [prosody, ej] = await Promise.all([
        startProsody({ storage: 'sqlite', hosts: [P], dir: prosodyDir, extraModules: ['tls'] }),
        startEjabberd({ storage: 'sqlite', hosts: [E], certfile: eCerts.combined }),
      ]);
      // Prosody → ejabberd: alice moves, her contacts bob and carol are on ejabberd; ejabberd →
      // Prosody: dave moves, his contacts are on Prosody. prosodyctl one at a time (one SQLite file).
      const prosodyUsers = async (): Promise<void> => {
        for (const [user, password] of [['alice', OLD_PASSWORD], ['dave', NEW_PASSWORD], ['bob', CONTACT_PASSWORD], ['carol', CONTACT_PASSWORD], ['archivist', CONTACT_PASSWORD]] as const) {
          await createUser(prosody, user, P, password);
        }
      };
      const ejabberdUsers = async (): Promise<void> => {
        for (const [user, password] of [['alice', NEW_PASSWORD], ['dave', OLD_PASSWORD], ['bob', CONTACT_PASSWORD], ['carol', CONTACT_PASSWORD], ['archivist', CONTACT_PASSWORD]] as const) {
          await ej.register(user, E, password);
        }
      };
      await Promise.all([prosodyUsers(), ejabberdUsers()]);
      await Promise.all([fillOldAccount(prosody, 'alice', E), fillOldAccount(ej, 'dave', P)]);
      // Accepts connections and never answers: the deadline case.
      silent = createServer(() => undefined);
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const silentPort = (silent.address() as { port: number }).port;
      const dataDir = join(dir, 'xporta');
      mkdirSync(dataDir);
      config = loadConfig({
        env: {
          XPORTA_DATA_DIR: dataDir,
          XPORTA_LOG_LEVEL: 'debug',
          XPORTA_OUTGOING: JSON.stringify({ allow: ['127.0.0.0/8'] }),
          // stranger.test is no VirtualHost of the Prosody it points at: a stream error.
          XPORTA_XMPP_CLIENT: JSON.stringify({
            caFile: cas,
            services: [`${P}=127.0.0.1:${prosody.c2sPort}`, `${E}=127.0.0.1:${ej.c2sPort}`, `stranger.test=127.0.0.1:${prosody.c2sPort}`, `silent.test=127.0.0.1:${silentPort}`],
            timeoutMs: 3000,
          }),
          // One transfer at a time, so that a second one is told so.
          XPORTA_LIMITS__MAX_CONCURRENT_IMPORTS: '1',
          XPORTA_STORAGE: JSON.stringify({ type: 'prosody-files', path: join(dir, 'files') }),
          XPORTA_AUTH__TOKENS: JSON.stringify([
            { name: 't', sha256: sha256(TOKEN), scopes: ['export', 'import', 'admin'] },
            { name: 'e', sha256: sha256(EXPORT_TOKEN), scopes: ['export'] },
          ]),
        },
        cwd: dir,
      });
      // The service's own log goes to a file under dataDir, so the no-password check reads it too.
      log = createWriteStream(join(dataDir, 'service.log'));
      app = buildApp({ config, storage: await openStorage(config), logStream: log });
    }, 120_000);

    afterAll(async () => {
      await Promise.allSettled([app?.close()]);
      silent?.close();
      log?.end();
      await Promise.allSettled([prosody?.stop(), ej?.stop()]);
      rmSync(dir, { recursive: true, force: true });
    });

    it('a wrong password for either account is a clear error naming it and writes nothing to either account', async () => {
      const wrong = 'Wr0ng-Destination-Pa55';
      const res = await transfer({ from: { jid: `alice@${P}`, password: OLD_PASSWORD }, to: { jid: `alice@${E}`, password: wrong }, move: true });
      expect(res.statusCode).toBe(422);
      const problem = res.json<{ type: string; detail: string }>();
      expect(problem.type).toBe('urn:xporta:problem:xmpp-auth-failed');
      expect(problem.detail).toContain(`the new account: alice@${E}`);
      expect(res.body).not.toContain(wrong);
      expect(res.body).not.toContain(OLD_PASSWORD);
      // A wrong password for the old account: refused too, after the new account's login and
      // before anything is written there.
      const wrongOld = await transfer({ from: { jid: `alice@${P}`, password: wrong }, to: { jid: `alice@${E}`, password: NEW_PASSWORD }, move: true });
      expect(wrongOld.statusCode).toBe(422);
      expect(wrongOld.json<{ detail: string }>().detail).toContain(`the old account: alice@${P}`);
      expect(wrongOld.body).not.toContain(NEW_PASSWORD);
      const fresh = await loginAs(ej, 'alice', NEW_PASSWORD);
      try {
        expect(await getRoster(fresh)).toEqual([]);
        expect(await getVCard(fresh)).toBeUndefined();
      } finally {
        await fresh.close();
      }
      expect(await statementOn(prosody, 'alice')).toBeUndefined();
      for (const file of filesUnder(join(dir, 'xporta'))) {
        const text = readFileSync(file, 'latin1');
        expect(text, file).not.toContain(wrong);
        expect(text, file).not.toContain(OLD_PASSWORD);
        expect(text, file).not.toContain(NEW_PASSWORD);
      }
    });

    it('moves Prosody → ejabberd through POST /v1/transfers/xmpp: data written, contacts asked with <moved>, statement published', async () => {
      const [bob, carol] = await Promise.all([loginAs(ej, 'bob', CONTACT_PASSWORD, { presence: true }), loginAs(ej, 'carol', CONTACT_PASSWORD, { presence: true })]);
      try {
        const res = await transfer({ from: { jid: `alice@${P}`, password: OLD_PASSWORD }, to: { jid: `alice@${E}`, password: NEW_PASSWORD }, move: true });
        expect(res.statusCode, res.body).toBe(200);
        const report = res.json<RemoteTransferReport>();
        expectReport(report, `alice@${P}`, `alice@${E}`);
        expect(await mamDefault(ej, 'alice', NEW_PASSWORD)).toBe(report.mamPreferences?.default);
        expect(await movedRequestFrom(bob, `alice@${E}`)).toBe(`alice@${P}`);
        expect(await movedRequestFrom(carol, `alice@${E}`)).toBe(`alice@${P}`);
      } finally {
        await Promise.all([bob.close(), carol.close()]);
      }
      await expectWritten(ej, 'alice', E);
      expect(await statementOn(prosody, 'alice')).toBe(`alice@${E}`);
      // Audited as the other privileged routes are: both JIDs and the counts, no password.
      const audit = readFileSync(join(dir, 'xporta', 'audit.log'), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { action: string; outcome: string; account?: string; target?: string; counts?: Record<string, number> });
      expect(audit.filter((a) => a.action === 'remote-transfer').map((a) => [a.outcome, a.account, a.target])).toEqual([
        ['refused', `alice@${P}`, `alice@${E}`],
        ['refused', `alice@${P}`, `alice@${E}`],
        ['ok', `alice@${P}`, `alice@${E}`],
      ]);
      expect(audit.at(-1)?.counts).toMatchObject({ roster: 2, vcard: 1 });
      for (const file of filesUnder(join(dir, 'xporta'))) {
        const text = readFileSync(file, 'latin1');
        expect(text, file).not.toContain(OLD_PASSWORD);
        expect(text, file).not.toContain(NEW_PASSWORD);
      }
    });

    it('moves ejabberd → Prosody through xporta transfer --move', async () => {
      const fromFile = join(dir, 'from-password');
      const toFile = join(dir, 'to-password');
      writeFileSync(fromFile, `${OLD_PASSWORD}\n`, { mode: 0o600 });
      writeFileSync(toFile, `${NEW_PASSWORD}\n`, { mode: 0o600 });
      const [bob, carol] = await Promise.all([loginAs(prosody, 'bob', CONTACT_PASSWORD, { presence: true }), loginAs(prosody, 'carol', CONTACT_PASSWORD, { presence: true })]);
      try {
        const report = await runTransfer(config, { from: `dave@${E}`, to: `dave@${P}`, fromPasswordFile: fromFile, toPasswordFile: toFile, move: true });
        expectReport(report, `dave@${E}`, `dave@${P}`);
        expect(await mamDefault(prosody, 'dave', NEW_PASSWORD)).toBe(report.mamPreferences?.default);
        // ejabberd keeps a blocklist as a privacy list too; Prosody 0.12 as the rig runs it has no
        // XEP-0016 module: the write is refused, listed, and the transfer goes on.
        expect(report.refused.destination).toEqual(['privacy list Blocked contacts: service-unavailable']);
        expect(await movedRequestFrom(bob, `dave@${P}`)).toBe(`dave@${E}`);
        expect(await movedRequestFrom(carol, `dave@${P}`)).toBe(`dave@${E}`);
      } finally {
        await Promise.all([bob.close(), carol.close()]);
        rmSync(fromFile);
        rmSync(toFile);
      }
      await expectWritten(prosody, 'dave', P);
      expect(await statementOn(ej, 'dave')).toBe(`dave@${P}`);
    });

    it('answers the documented problems for bad requests, other tokens, busy slots and unreachable or silent servers', async () => {
      const ok = { from: { jid: `alice@${P}`, password: OLD_PASSWORD }, to: { jid: `alice@${E}`, password: NEW_PASSWORD } };
      expect((await transfer({ from: ok.from })).statusCode).toBe(400);
      expect((await transfer({ ...ok, to: { jid: `alice@${E}` } })).statusCode).toBe(400);
      expect((await transfer({ ...ok, extra: 1 })).statusCode).toBe(400);
      expect((await transfer({ ...ok, to: ok.from })).statusCode).toBe(400);
      expect((await transfer(ok, '')).statusCode).toBe(401);
      expect((await transfer(ok, EXPORT_TOKEN)).statusCode).toBe(403);
      const stranger = await transfer({ ...ok, to: { jid: 'alice@stranger.test', password: 'x' } });
      expect(stranger.statusCode).toBe(502);
      expect(stranger.json<{ type: string }>().type).toBe('urn:xporta:problem:xmpp-protocol');
      // The silent server holds the only slot until its deadline: a second transfer is told to wait.
      const [mute, busy] = await Promise.all([
        transfer({ ...ok, to: { jid: 'alice@silent.test', password: 'x' } }),
        new Promise((r) => setTimeout(r, 300)).then(() => transfer(ok)),
      ]);
      expect(busy.statusCode).toBe(429);
      expect(mute.statusCode).toBe(504);
      expect(contract.missing().filter((k) => k.includes(PATH))).toEqual([]);
    });
  });
});
