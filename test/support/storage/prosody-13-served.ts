/**
 * Imports into an account a real Prosody has already served (on 13 its lists carry `.lidx`
 * indexes, its account has `created`/`updated`, a role), in merge and then replace mode, and
 * checks what Prosody serves afterwards: every message, bookmark, vCard, PEP item, roster item and
 * blocklist entry, the offline messages (delivered on initial presence, with a delay); the moved
 * password. On 13 also: a token grant (mod_tokenauth compares the
 * account's `updated` with the grant's time); the account's role and its `disabled` flag kept
 * through a replace; an account created by the import gets the role `prosodyctl adduser` gives.
 * Prosody's log must hold no error from any start or first use.
 *
 * Each import runs while the account has no session, and Prosody is restarted after it (its
 * in-process caches, e.g. MAM's item counts, would otherwise keep serving what was there before).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRecordRewriter } from '../../../src/transfer/rename.js';
import type { StorageBackend } from '../../../src/storage/backend.js';
import { ProsodyFilesBackend } from '../../../src/storage/prosody-files/index.js';
import { ProsodySqlBackend, type ProsodySqlConnection } from '../../../src/storage/prosody-sql/index.js';
import { DATA_KINDS, type UserRecord, type UserStart } from '../../../src/records/model.js';
import { populateAccount, type PopulateSummary } from '../populate.js';
import {
  createUser,
  describeWithProsody,
  isCI,
  startProsody,
  type ProsodyHandle,
  type ProsodySqlParams,
  type ProsodyStorageKind,
  type ProsodyVersion,
} from '../prosody.js';
import { sqlServerAvailable } from '../../../bench/sql-databases.js';
import { getBlocklist, getPepItems, getRoster, getVCard, loginAs, publishPep, queryMam, sendMessage, setVCard, xml, type XmppClient } from '../xmpp-client.js';
import { collect, iterate } from './sample-user.js';

const ALL = new Set(DATA_KINDS);

const sqlUp: Partial<Record<ProsodyStorageKind, boolean>> = {
  postgres: await sqlServerAvailable('postgres'),
  mysql: await sqlServerAvailable('mysql'),
};
const HOST = 'localhost';
const BOOKMARKS = 'urn:xmpp:bookmarks:1';

function connectionOf(sql: ProsodySqlParams): ProsodySqlConnection {
  const server = { host: sql.host, port: sql.port, user: sql.username, password: sql.password, database: sql.database };
  if (sql.driver === 'SQLite3') return { dialect: 'sqlite', database: sql.database };
  return sql.driver === 'PostgreSQL' ? { dialect: 'postgresql', ...server } : { dialect: 'mysql', ...server };
}

/** Error lines of Prosody's log file. */
export async function logErrors(prosody: ProsodyHandle): Promise<string[]> {
  const text = await readFile(prosody.logPath, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => /\terror\t/.test(l));
}

/** `prosodyctl shell <command>` output; fails the test on a non-zero exit. */
export async function shell(prosody: ProsodyHandle, command: string): Promise<string> {
  const r = await prosody.prosodyctl(['shell', command]);
  if (r.code !== 0) throw new Error(`prosodyctl shell ${command} failed (${r.code}): ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/**
 * Creates a token grant for the account and validates every grant it has, as FAST, OAuth2 and the
 * daily cleanup do: with `updated` stored as a string this raises "attempt to compare number with
 * string". (A grant made in the same second as the import's password change stays valid.)
 */
export async function grantWorks(prosody: ProsodyHandle, user: string): Promise<string> {
  const jid = `${user}@${HOST}`;
  const lua =
    `>local t = prosody.hosts["${HOST}"].modules.tokenauth; assert(t.create_grant("${jid}", "${jid}", 3600)); ` +
    `local n = 0; for _ in pairs(t.get_user_grants("${user}") or {}) do n = n + 1 end; return "GRANTS=" .. n`;
  const r = await prosody.prosodyctl(['shell', lua]);
  return `${r.stdout}${r.stderr}`;
}

export function prosody13ServedAccountSuite(storage: ProsodyStorageKind): void {
  prosodyServedAccountSuite(storage, '13');
}

export function prosodyServedAccountSuite(storage: ProsodyStorageKind, version: ProsodyVersion): void {
  const skip = (storage === 'postgres' || storage === 'mysql') && !isCI && !sqlUp[storage];
  const thirteen = version === '13';
  describeWithProsody(
    `Prosody ${version} (${storage}): importing into an account the server has already served`,
    () => {
      describe.skipIf(skip)('', () => {
        let root: string;
        let prosody: ProsodyHandle;
        let backend: StorageBackend;
        let summary: PopulateSummary;
        let account: UserStart;
        let frankRecords: UserRecord[];
        const clients: XmppClient[] = [];
        let logChecked = 0;

        const start = async (): Promise<void> => {
          prosody = await startProsody({ version, storage, dir: root, ...(thirteen ? { extraModules: ['tokenauth'] } : {}) });
        };
        const login = async (user: string, password: string): Promise<XmppClient> => {
          const c = await loginAs(prosody, user, password);
          clients.push(c);
          return c;
        };
        const closeClients = async (): Promise<void> => {
          await Promise.all(clients.splice(0).map((c) => c.close()));
        };
        /** Runs `fn` with no session open, then restarts Prosody on the same data. */
        const whileStopped = async <T>(fn: () => Promise<T>): Promise<T> => {
          await closeClients();
          const result = await fn();
          await prosody.restart();
          return result;
        };
        const noNewErrors = async (): Promise<void> => {
          const errors = await logErrors(prosody);
          expect(errors.slice(logChecked)).toEqual([]);
          logChecked = errors.length;
        };

        beforeAll(async () => {
          root = await mkdtemp(join(tmpdir(), 'xporta-p13-served-'));
          await start();
          summary = await populateAccount(prosody, { messages: 10 });
          // frank: an account Prosody has served, with an archive, a XEP-0402 bookmark and a vCard of his own.
          await createUser(prosody, 'frank', HOST, 'frank-old-pw');
          const frank = await login('frank', 'frank-old-pw');
          for (const n of [1, 2, 3]) await sendMessage(frank, `bob@${HOST}`, `frank ${n}`);
          await publishPep(frank, BOOKMARKS, `frank-room@conference.${HOST}`, xml('conference', { xmlns: BOOKMARKS, name: 'Frank', autojoin: 'false' }), {
            'pubsub#persist_items': 'true',
            'pubsub#access_model': 'whitelist',
            'pubsub#max_items': 'max',
            'pubsub#send_last_published_item': 'never',
          });
          await setVCard(frank, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Frank Old')));
          expect((await queryMam(frank)).map((m) => m.message.getChildText('body'))).toEqual(['frank 1', 'frank 2', 'frank 3']);
          if (thirteen) await shell(prosody, `user:set_role("frank@${HOST}", "${HOST}", "prosody:admin")`);
          await closeClients();
          const sql = prosody.sql;
          backend =
            storage === 'internal'
              ? new ProsodyFilesBackend({ path: join(root, 'data'), hosts: { [HOST]: { passwordHash: 'SHA-1' } } })
              : new ProsodySqlBackend({ ...connectionOf(sql as ProsodySqlParams), hosts: { [HOST]: { passwordHash: 'SHA-1' } } });
          account = (await backend.readAccount({ host: HOST, user: 'alice' })) as UserStart;
          const records = await collect(backend.readUser({ host: HOST, user: 'alice' }, { include: ALL }));
          frankRecords = records.map(createRecordRewriter(`alice@${HOST}`, `frank@${HOST}`));
        }, 180_000);

        afterAll(async () => {
          await closeClients();
          await backend?.close();
          await prosody?.stop();
          if (root && process.env.XPORTA_KEEP_TEST_DATA !== '1') await rm(root, { recursive: true, force: true });
        });

        const aliceBookmarks = (): string[] => summary.pep.find((n) => n.node === BOOKMARKS)?.items.map((i) => i.id) ?? [];
        const aliceBodies = (): string[] => summary.archive.messages.map((m) => m.body);
        const aliceOffline = (): string[] => summary.offline.map((m) => m.body);
        /** Alice's PEP nodes with stored items (not the bookmarks node, checked on its own), and their item ids. */
        const alicePep = (): Record<string, string[]> =>
          Object.fromEntries(summary.pep.filter((n) => n.node !== BOOKMARKS && n.items.length > 0).map((n) => [n.node, n.items.map((i) => i.id).sort()]));

        /**
         * What frank gets from Prosody: on initial presence the offline messages (bodies of those
         * with a XEP-0203 delay); MAM bodies, bookmark ids, the item ids of alice's other PEP nodes,
         * FN, roster JIDs, blocklist.
         */
        const served = async (
          password: string,
        ): Promise<{ mam: string[]; bookmarks: string[]; pep: Record<string, string[]>; fn: string | undefined; roster: string[]; blocklist: string[]; offline: string[] }> => {
          const c = await login('frank', password);
          // Going online first: once the session has queried MAM, Prosody leaves offline messages to it.
          await c.send(xml('presence'));
          const delivered = await Promise.all(
            aliceOffline().map((body) => c.waitFor((s) => s.is('message') && s.getChildText('body') === body, 10_000)),
          );
          const offline = delivered.filter((m) => m.getChild('delay', 'urn:xmpp:delay')).map((m) => m.getChildText('body') ?? '');
          const mam = (await queryMam(c)).map((m) => m.message.getChildText('body') ?? '');
          const bookmarks = (await getPepItems(c, undefined, BOOKMARKS)).map((i) => i.id).sort();
          const pep: Record<string, string[]> = {};
          for (const node of Object.keys(alicePep())) pep[node] = (await getPepItems(c, undefined, node)).map((i) => i.id).sort();
          const fn = (await getVCard(c))?.getChildText('FN') ?? undefined;
          const roster = (await getRoster(c)).map((i) => i.jid).sort();
          const blocklist = (await getBlocklist(c)).sort();
          return { mam, bookmarks, pep, fn, roster, blocklist, offline };
        };

        it.runIf(thirteen)('the served account has what Prosody 13 writes: list indexes (files), a role, numeric times', async () => {
          if (storage === 'internal') {
            const { readdir } = await import('node:fs/promises');
            expect(await readdir(join(root, 'data', HOST, 'archive'))).toContain('frank.lidx');
          }
          expect(await shell(prosody, `user:role("frank@${HOST}")`)).toContain('prosody:admin');
          expect(await grantWorks(prosody, 'frank')).toMatch(/Result: GRANTS=[1-9]/);
          await noNewErrors();
        });

        it(`merge: Prosody serves frank’s own data and all of alice’s, the moved password works${thirteen ? ', and so do token grants' : ''}`, async () => {
          const report = await whileStopped(() =>
            backend.applyUser({ host: HOST, user: 'frank' }, { ...account, name: 'frank' }, iterate(frankRecords), { mode: 'merge', dryRun: false, include: ALL, createAccount: false }),
          );
          expect(report).toMatchObject({ created: false, warnings: [] });
          const got = await served(summary.alice.password);
          expect(got.mam).toEqual(['frank 1', 'frank 2', 'frank 3', ...aliceBodies()]);
          expect(got.bookmarks).toEqual([...aliceBookmarks(), `frank-room@conference.${HOST}`].sort());
          expect(got.fn).toBe('Alice Example');
          expect(got.roster).toEqual(summary.roster.items.map((i) => i.jid).sort());
          expect(got.blocklist).toEqual(summary.blocklist);
          expect(got.offline).toEqual(aliceOffline());
          expect(Object.keys(alicePep())).toEqual(expect.arrayContaining(['urn:xmpp:avatar:data', 'urn:xmpp:avatar:metadata']));
          expect(got.pep).toEqual(alicePep());
          if (thirteen) expect(await grantWorks(prosody, 'frank')).toMatch(/Result: GRANTS=[1-9]/);
          await noNewErrors();
        });

        it(`replace: Prosody serves exactly alice’s data${thirteen ? '; frank keeps his role' : ''}`, async () => {
          await whileStopped(() =>
            backend.applyUser({ host: HOST, user: 'frank' }, { ...account, name: 'frank' }, iterate(frankRecords), { mode: 'replace', dryRun: false, include: ALL, createAccount: false }),
          );
          const got = await served(summary.alice.password);
          expect(got.mam).toEqual(aliceBodies());
          expect(got.bookmarks).toEqual([...aliceBookmarks()].sort());
          expect(got.fn).toBe('Alice Example');
          expect(got.roster).toEqual(summary.roster.items.map((i) => i.jid).sort());
          expect(got.blocklist).toEqual(summary.blocklist);
          expect(got.offline).toEqual(aliceOffline());
          expect(got.pep).toEqual(alicePep());
          if (thirteen) {
            expect(await shell(prosody, `user:role("frank@${HOST}")`)).toContain('prosody:admin');
            expect(await grantWorks(prosody, 'frank')).toMatch(/Result: GRANTS=[1-9]/);
          }
          await noNewErrors();
        });

        it.runIf(thirteen)('an account created by the import gets the role prosodyctl adduser gives, and alice’s data', async () => {
          await whileStopped(() =>
            backend.applyUser({ host: HOST, user: 'gina' }, { ...account, name: 'gina' }, iterate(frankRecords.map(createRecordRewriter(`frank@${HOST}`, `gina@${HOST}`))), {
              mode: 'replace',
              dryRun: false,
              include: ALL,
              createAccount: true,
            }),
          );
          await shell(prosody, `user:create("henry@${HOST}", "henry-pw", "prosody:member")`);
          const henryRole = (await shell(prosody, `user:role("henry@${HOST}")`)).trim();
          expect(henryRole).toContain('prosody:member');
          expect((await shell(prosody, `user:role("gina@${HOST}")`)).trim()).toBe(henryRole);
          const gina = await login('gina', summary.alice.password);
          expect((await queryMam(gina)).map((m) => m.message.getChildText('body'))).toEqual(aliceBodies());
          expect(await grantWorks(prosody, 'gina')).toMatch(/Result: GRANTS=[1-9]/);
          await noNewErrors();
        });

        it.runIf(thirteen)('a disabled account stays disabled through a replace import', async () => {
          await shell(prosody, `user:disable("frank@${HOST}")`);
          await whileStopped(() =>
            backend.applyUser({ host: HOST, user: 'frank' }, { ...account, name: 'frank' }, iterate(frankRecords), { mode: 'replace', dryRun: false, include: ALL, createAccount: false }),
          );
          await expect(loginAs(prosody, 'frank', summary.alice.password)).rejects.toThrow(/login failed/);
          await shell(prosody, `user:enable("frank@${HOST}")`);
          const c = await login('frank', summary.alice.password);
          expect((await queryMam(c)).length).toBe(aliceBodies().length);
          await noNewErrors();
        });
      });
    },
    version,
  );
}
