/**
 * mod_vcard_legacy and a replace import into an account that has logged in, on Prosody 0.12 and 13.
 * At the first login Prosody moves the imported vcard-temp vCard into PEP (vcard4, avatar nodes)
 * and empties the `vcard` store. The running Prosody keeps the user's PEP service, its node list
 * included, in memory; a second import that wrote only the `vcard` store (and emptied the PEP
 * stores) made mod_vcard_legacy see the cached vcard4 node at the next login and delete the
 * imported vCard unread. The import now also writes the PEP items mod_vcard_legacy would have
 * published, so the cached nodes find them in storage: the vCard is served while Prosody runs
 * (the same user still logged in) and after a restart.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { buildApp } from '../../src/http/server.js';
import { openStorage } from '../../src/storage/open.js';
import { accountDocument } from '../support/documents.js';
import { describeWithProsody, startProsody, type ProsodyHandle, type ProsodyVersion } from '../support/prosody.js';
import { getPepItems, getVCard, loginAs, type XmppClient } from '../support/xmpp-client.js';

const TOKEN = 'vcard-legacy-operator-token';

for (const version of ['0.12', '13'] as const satisfies readonly ProsodyVersion[]) {
describeWithProsody(`vCard after a replace re-import on mod_vcard_legacy (Prosody ${version})`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-vcard-legacy-'));
  let prosody: ProsodyHandle;
  let app: FastifyInstance;
  let dbPath: string;

  beforeAll(async () => {
    prosody = await startProsody({ version, storage: 'sqlite' });
    dbPath = join(prosody.rootDir, 'data', 'prosody.sqlite');
    const config = loadConfig({
      env: {
        XPORTA_DATA_DIR: dir,
        XPORTA_LOG_LEVEL: 'silent',
        XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'sqlite', database: dbPath }),
        XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 't', sha256: createHash('sha256').update(TOKEN).digest('hex'), scopes: ['export', 'import', 'admin'] }]),
      },
      cwd: dir,
    });
    app = buildApp({ config, storage: await openStorage(config), logger: false });
    await app.ready();
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await prosody?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const stores = (): string[] => {
    const db = new Database(dbPath, { readonly: true });
    const rows = db.prepare(`SELECT DISTINCT 'kv:' || "store" AS s FROM "prosody" WHERE "user" = 'alice' UNION SELECT DISTINCT 'ar:' || "store" FROM "prosodyarchive" WHERE "user" = 'alice' ORDER BY 1`).all() as { s: string }[];
    db.close();
    return rows.map((r) => r.s);
  };

  const put = async (doc: string): Promise<{ status: number; body: string }> => {
    const res = await app.inject({
      method: 'PUT',
      url: '/v1/users/alice%40localhost/import?createAccount=true&mode=replace',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/xml' },
      payload: doc,
    });
    return { status: res.statusCode, body: res.body };
  };

  /** What a fresh login of alice is served: vcard-temp FN and PHOTO type, and the vcard4 and avatar items. */
  const served = async (): Promise<{ fn: string | undefined; photo: string | undefined; vcard4Fn: string | undefined; avatars: number }> => {
    const client = await loginAs(prosody, 'alice', 'correct horse');
    try {
      const vcard = await getVCard(client);
      const vcard4 = (await getPepItems(client, undefined, 'urn:xmpp:vcard4'))[0]?.payload;
      const avatars = await getPepItems(client, undefined, 'urn:xmpp:avatar:metadata');
      return {
        fn: vcard?.getChildText('FN') ?? undefined,
        photo: vcard?.getChild('PHOTO')?.getChildText('TYPE') ?? undefined,
        vcard4Fn: vcard4?.getChild('fn')?.getChildText('text') ?? undefined,
        avatars: avatars.length,
      };
    } finally {
      await client.close();
    }
  };
  const withName = (doc: string, fn: string): string => doc.replace('<FN>Alice Example</FN>', `<FN>${fn}</FN>`);

  it('importing the same document twice while the user is logged in leaves the vCard served, after the next login and after a restart', async () => {
    const doc = accountDocument({ host: 'localhost', user: 'alice', password: 'correct horse' });
    expect((await put(doc)).status).toBe(200);
    expect(stores()).toContain('kv:vcard');
    const expected = { fn: 'Alice Example', photo: 'image/png', vcard4Fn: 'Alice Example', avatars: 1 };
    expect(await served()).toEqual(expected);
    // mod_vcard_legacy moved the vCard into PEP at that login.
    expect(stores()).toEqual(expect.arrayContaining(['ar:pep_urn:xmpp:vcard4', 'ar:pep_urn:xmpp:avatar:data']));
    expect(stores()).not.toContain('kv:vcard');

    // A session stays logged in through both imports: Prosody keeps the user's PEP service cached.
    let session: XmppClient | undefined = await loginAs(prosody, 'alice', 'correct horse');
    try {
      for (let round = 0; round < 2; round++) {
        const again = await put(doc);
        expect(again.status).toBe(200);
        const report = JSON.parse(again.body) as { counts: Record<string, number>; warnings: string[] };
        expect(report.counts.vcard).toBe(1);
        expect(report.warnings).toEqual([]);
        expect(await served()).toEqual(expected);
        expect((await getVCard(session))?.getChildText('FN')).toBe('Alice Example');
      }

      // A different vCard replaces the one Prosody serves, not only the stored one.
      expect((await put(withName(doc, 'Alice Renamed'))).status).toBe(200);
      expect(await served()).toEqual({ ...expected, fn: 'Alice Renamed', vcard4Fn: 'Alice Renamed' });
    } finally {
      await session?.close();
      session = undefined;
    }

    await prosody.restart();
    expect(await served()).toEqual({ ...expected, fn: 'Alice Renamed', vcard4Fn: 'Alice Renamed' });
    await prosody.restart();
    expect(await served()).toEqual({ ...expected, fn: 'Alice Renamed', vcard4Fn: 'Alice Renamed' });
    expect(stores()).toContain('ar:pep_urn:xmpp:vcard4');
  }, 180_000);

  it('a document without a vCard in PEP imported into an account that never logged in gives no warning', async () => {
    const doc = accountDocument({ host: 'localhost', user: 'bob', password: 'pw' });
    const res = await app.inject({
      method: 'PUT',
      url: '/v1/users/bob%40localhost/import?createAccount=true',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/xml' },
      payload: doc,
    });
    expect(JSON.parse(res.body)).toMatchObject({ warnings: [] });
  });
});
}
