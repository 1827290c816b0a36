/**
 * The mod_http_xep227-compatible endpoints against a real Prosody (0.12 and 13) on its SQLite store, over
 * a real HTTP socket, as a tool written for the Prosody module calls them: `GET /xep227/export`
 * and `PUT /xep227/import` with `stores=` and a bearer token. What an export holds is read from
 * the document; what an import did is seen by a real client logging in to Prosody afterwards.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { buildApp } from '../../src/http/server.js';
import { dataKindOf, type DataKind, type UserStart } from '../../src/records/model.js';
import { openStorage } from '../../src/storage/open.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { NO_CONVERSION_PROSODY_OPTIONS } from '../support/populate.js';
import { createUser, describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { block, getBlocklist, getPrivate, getRoster, getVCard, loginAs, setPrivate, setRosterItem, setVCard, xml } from '../support/xmpp-client.js';

const OPERATOR = 'xep227-live-operator-token';
const NS_PREFS = 'urn:example:xporta:prefs';

for (const version of ['0.12', '13'] as const) {
  describeWithProsody(
    `mod_http_xep227-compatible endpoints against Prosody ${version} (SQLite)`,
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'xporta-xep227-live-'));
      let prosody: ProsodyHandle;
      let app: FastifyInstance;
      let base: string;

      const call = async (method: 'GET' | 'PUT' | 'POST', path: string, token: string, body?: string, type = 'application/xml'): Promise<Response> =>
        fetch(`${base}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': type } : {}) },
          ...(body !== undefined ? { body } : {}),
        });

      const userToken = async (user: string, scopes: string[]): Promise<string> => {
        const res = await call('POST', `/v1/users/${user}%40localhost/tokens`, OPERATOR, JSON.stringify({ scopes, ttlSeconds: 600 }), 'application/json');
        expect(res.status).toBe(201);
        return ((await res.json()) as { token: string }).token;
      };

      const contents = async (doc: string): Promise<{ kinds: DataKind[]; user: UserStart }> => {
        const kinds = new Set<DataKind>();
        let user: UserStart | undefined;
        for await (const e of readDocument(Readable.from([Buffer.from(doc)]))) {
          if (e.kind === 'user') user = e;
          else if (e.kind !== 'host' && e.kind !== 'host-end' && e.kind !== 'user-end') kinds.add(dataKindOf(e));
        }
        if (!user) throw new Error('no user in the document');
        return { kinds: [...kinds].sort(), user };
      };

      /** What dave's own client sees after logging in with `password`. */
      const daveSees = async (password: string): Promise<{ roster: string[]; fn: string | undefined; prefs: string | undefined; blocklist: string[] }> => {
        const client = await loginAs(prosody, 'dave', password);
        try {
          return {
            roster: (await getRoster(client)).map((i) => i.jid).sort(),
            fn: (await getVCard(client))?.getChildText('FN') ?? undefined,
            prefs: (await getPrivate(client, 'prefs', NS_PREFS))?.text(),
            blocklist: (await getBlocklist(client)).sort(),
          };
        } finally {
          await client.close();
        }
      };

      beforeAll(async () => {
        prosody = await startProsody({ version, storage: 'sqlite', ...NO_CONVERSION_PROSODY_OPTIONS });
        await createUser(prosody, 'alice', 'localhost', 'alice-password');
        await createUser(prosody, 'dave', 'localhost', 'dave-password');

        const alice = await loginAs(prosody, 'alice', 'alice-password');
        try {
          await setRosterItem(alice, 'bob@example.net', 'Bob', ['Friends']);
          await setVCard(alice, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Alice Live')));
          await setPrivate(alice, xml('prefs', { xmlns: NS_PREFS }, 'alice'));
          await block(alice, ['alice-blocked@spam.example']);
        } finally {
          await alice.close();
        }
        const dave = await loginAs(prosody, 'dave', 'dave-password');
        try {
          await setRosterItem(dave, 'zoe@example.org', 'Zoe');
          await setVCard(dave, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Dave Before')));
          await setPrivate(dave, xml('prefs', { xmlns: NS_PREFS }, 'dave'));
          await block(dave, ['dave-blocked@spam.example']);
        } finally {
          await dave.close();
        }

        const config = loadConfig({
          env: {
            XPORTA_DATA_DIR: dir,
            XPORTA_LOG_LEVEL: 'silent',
            XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'sqlite', database: join(prosody.rootDir, 'data', 'prosody.sqlite') }),
            XPORTA_AUTH__USER_TOKEN_SECRET: 'x'.repeat(40),
            XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'ops', sha256: createHash('sha256').update(OPERATOR).digest('hex'), scopes: ['export', 'import', 'admin'] }]),
          },
          cwd: dir,
        });
        app = buildApp({ config, storage: await openStorage(config), logger: false });
        await app.listen({ host: '127.0.0.1', port: 0 });
        base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      }, 120_000);

      afterAll(async () => {
        await app?.close();
        await prosody?.stop();
        rmSync(dir, { recursive: true, force: true });
      });

      it("exports alice's account with her own token: only the stores named", async () => {
        const token = await userToken('alice', ['export']);
        const res = await call('GET', '/xep227/export?stores=roster,vcard', token);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/^application\/xml/);
        const doc = await res.text();
        const { kinds, user } = await contents(doc);
        expect(user.name).toBe('alice');
        expect(user.scram).toEqual([]);
        expect(kinds).toEqual(['roster', 'vcard']);
        expect(doc).toContain('bob@example.net');
        expect(doc).toContain('Alice Live');
        expect(doc).not.toContain('alice-blocked@spam.example');

        const all = await (await call('GET', '/xep227/export?stores=accounts,roster,vcard,private,blocklist', token)).text();
        const whole = await contents(all);
        expect(whole.kinds).toEqual(['blocklist', 'private', 'roster', 'vcard']);
        expect(whole.user.scram.length).toBeGreaterThan(0);
      }, 60_000);

      it("imports alice's document into dave through PUT with stores=roster,vcard: dave's client sees them, and the other kinds as they were", async () => {
        const exporter = await userToken('alice', ['export']);
        const all = await (await call('GET', '/xep227/export?stores=accounts,roster,vcard,private,blocklist', exporter)).text();
        expect(await daveSees('dave-password')).toEqual({ roster: ['zoe@example.org'], fn: 'Dave Before', prefs: 'dave', blocklist: ['dave-blocked@spam.example'] });

        const importer = await userToken('dave', ['import']);
        const res = await call('PUT', '/xep227/import?stores=roster,vcard', importer, all);
        expect(res.status).toBe(200);
        const report = (await res.json()) as { mode: string; counts: Record<string, number> };
        expect(report.mode).toBe('merge');
        expect(Object.keys(report.counts).sort()).toEqual(['roster', 'vcard']);

        // dave's own password still works (accounts was not named), bob is in the roster beside zoe
        // (merged), the vCard is alice's; private data and the blocklist are dave's own still.
        expect(await daveSees('dave-password')).toEqual({
          roster: ['bob@example.net', 'zoe@example.org'],
          fn: 'Alice Live',
          prefs: 'dave',
          blocklist: ['dave-blocked@spam.example'],
        });
      }, 60_000);

      it('an unknown store is 400 naming it, and changes nothing; accounts through the operator path carries the password', async () => {
        const exporter = await userToken('alice', ['export']);
        const all = await (await call('GET', '/xep227/export?stores=accounts,roster,vcard,private,blocklist', exporter)).text();
        const before = await daveSees('dave-password');

        const importer = await userToken('dave', ['import']);
        const bad = await call('PUT', '/xep227/import?stores=private,blocklists', importer, all);
        expect(bad.status).toBe(400);
        expect(bad.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        const problem = (await bad.json()) as { detail: string };
        expect(problem.detail).toContain('unknown store "blocklists"');
        expect(JSON.stringify(problem)).not.toContain(importer);
        expect(await daveSees('dave-password')).toEqual(before);

        const operatorOnOwnPath = await call('PUT', '/xep227/import?stores=accounts', OPERATOR, all);
        expect(operatorOnOwnPath.status).toBe(403);

        const res = await call('PUT', '/xep227/users/dave%40localhost/import?stores=accounts,private,blocklist&mode=replace', OPERATOR, all);
        expect(res.status).toBe(200);
        // alice's credentials now open dave's account; the private data replaced is hers.
        const after = await daveSees('alice-password');
        expect(after).toMatchObject({ roster: before.roster, fn: before.fn, prefs: 'alice' });
        await expect(loginAs(prosody, 'dave', 'dave-password')).rejects.toThrow();
        // mod_blocklist keeps the blocklists it has read in memory (blocklist_cache_size, 64 users)
        // and serves dave's from there until Prosody restarts; storage holds alice's already.
        expect(after.blocklist).toEqual(['dave-blocked@spam.example']);
        await prosody.restart();
        expect(await daveSees('alice-password')).toEqual({ ...before, prefs: 'alice', blocklist: ['alice-blocked@spam.example'] });
      }, 60_000);
    },
    version,
  );
}
