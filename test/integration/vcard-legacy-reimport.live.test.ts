/**
 * mod_vcard_legacy (Prosody 0.12) and a replace import into an account that has logged in. At the
 * first login Prosody moves the imported vcard-temp vCard into PEP (vcard4, avatar nodes) and
 * empties the `vcard` store. A second import writes the vCard again and removes those PEP nodes
 * from storage, but the running Prosody keeps the user's PEP service, nodes included, in memory;
 * at the next login mod_vcard_legacy sees the vcard4 node, decides the vCard is already in PEP and
 * deletes the imported one unread: the vCard is gone, for good. Storage cannot fix a cache in
 * Prosody's memory: the import reports it, and after the restart it asks for the vCard is served.
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
import { describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { getVCard, loginAs } from '../support/xmpp-client.js';

const TOKEN = 'vcard-legacy-operator-token';

describeWithProsody('vCard after a replace re-import on mod_vcard_legacy (Prosody 0.12)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-vcard-legacy-'));
  let prosody: ProsodyHandle;
  let app: FastifyInstance;
  let dbPath: string;

  beforeAll(async () => {
    prosody = await startProsody({ storage: 'sqlite' });
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

  const fnSeen = async (): Promise<string | undefined> => {
    const client = await loginAs(prosody, 'alice', 'correct horse');
    try {
      return (await getVCard(client))?.getChildText('FN') ?? undefined;
    } finally {
      await client.close();
    }
  };

  it('importing the same document again after a login warns that Prosody must restart; after the restart the vCard is served, and stays', async () => {
    const doc = accountDocument({ host: 'localhost', user: 'alice', password: 'correct horse' });
    expect((await put(doc)).status).toBe(200);
    expect(stores()).toContain('kv:vcard');
    expect(await fnSeen()).toBe('Alice Example');
    // mod_vcard_legacy moved the vCard into PEP at that login.
    expect(stores()).toEqual(expect.arrayContaining(['ar:pep_urn:xmpp:vcard4', 'ar:pep_urn:xmpp:avatar:data']));
    expect(stores()).not.toContain('kv:vcard');

    const second = await put(doc);
    expect(second.status).toBe(200);
    const report = JSON.parse(second.body) as { counts: Record<string, number>; warnings: string[] };
    expect(report.counts.vcard).toBe(1);
    expect(report.warnings).toEqual([expect.stringMatching(/^vCard: alice@localhost had its vCard in PEP \(urn:xmpp:vcard4, urn:xmpp:avatar:metadata, urn:xmpp:avatar:data\).*restart Prosody before the user logs in again$/)]);

    await prosody.restart();
    expect(await fnSeen()).toBe('Alice Example');
    await prosody.restart();
    expect(await fnSeen()).toBe('Alice Example');
    expect(stores()).toContain('ar:pep_urn:xmpp:vcard4');
  }, 120_000);

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
