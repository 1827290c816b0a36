/**
 * The HTTP host import takes what a live ejabberd's `export_piefxis` and `export_piefxis_host`
 * write, sent over a real socket as an operator would: the main file with its XIncluded host
 * file as one multipart upload (each included file a part whose filename is what the `href`
 * names), and the `<host>`-rooted host file as `application/xml`. Every account then logs in to
 * a fresh ejabberd with its own password. (test/cli/host-import.live.test.ts does the same
 * through `xporta import --host`; test/http/host-upload.test.ts takes the committed fixture.)
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { buildApp } from '../../src/http/server.js';
import { openStorage } from '../../src/storage/open.js';
import { expectServesSame, probeAccount, type ServedAccount } from '../support/account-probe.js';
import { describeWithEjabberd, startEjabberd, type EjabberdHandle, type EjabberdVersion } from '../support/ejabberd.js';
import { EJ_ALICE_PASSWORD, populateEjabberdAlice } from '../support/ejabberd-populate.js';
import { connectClient } from '../support/xmpp-client.js';

const OPERATOR = 'piefxis-http-operator-token';
const MAIN_FILE = /^\d{8}-\d{6}\.xml$/;
const NICK = 'http://jabber.org/protocol/nick';
const aliceOn = (ej: EjabberdHandle) => ({ service: ej.service, domain: 'localhost', username: 'alice', password: EJ_ALICE_PASSWORD });

const VARIANTS: readonly { readonly version: EjabberdVersion; readonly schema: 'new' | 'default' }[] = [
  { version: '23.01', schema: 'new' },
  { version: '23.01', schema: 'default' },
  { version: '24.12', schema: 'new' },
];

for (const { version, schema } of VARIANTS) describeWithEjabberd(`ejabberd ${version} (${schema} schema) export_piefxis / export_piefxis_host → PUT /v1/hosts/{host}/import → ejabberd ${version}`, () => {
  const newSchema = schema === 'new';
  let source: EjabberdHandle;
  let exportDir: string;
  let hostDir: string;
  let sourceAlice: ServedAccount;

  beforeAll(async () => {
    source = await startEjabberd({ version, newSchema });
    await populateEjabberdAlice(source);
    exportDir = await mkdtemp(join(tmpdir(), 'xporta-http-piefxis-'));
    hostDir = await mkdtemp(join(tmpdir(), 'xporta-http-piefxis-host-'));
    const all = await source.ctl(['export_piefxis', exportDir]);
    if (all.code !== 0) throw new Error(`export_piefxis failed: ${all.stdout}${all.stderr}`);
    const one = await source.ctl(['export_piefxis_host', hostDir, 'localhost']);
    if (one.code !== 0) throw new Error(`export_piefxis_host failed: ${one.stdout}${one.stderr}`);
    // After the exports: the probe consumes alice's offline messages.
    sourceAlice = await probeAccount(aliceOn(source), { pepNodes: [NICK] });
    expect(sourceAlice.archiveCount).toBe(3);
    expect(sourceAlice.pep[NICK]).toHaveLength(1);
    expect(sourceAlice.offline.map((o) => o.body)).toEqual(['hello alice', 'while you were away']);
  }, 120_000);

  afterAll(async () => {
    await source?.stop();
    for (const d of [exportDir, hostDir]) if (d) await rm(d, { recursive: true, force: true });
  });

  /** A fresh ejabberd, xporta serving its SQLite database over HTTP, and `upload` sent to its host import. */
  async function importInto(upload: (base: string) => Promise<Response>): Promise<EjabberdHandle> {
    const target = await startEjabberd({ version, newSchema });
    const dir = await mkdtemp(join(tmpdir(), 'xporta-http-piefxis-app-'));
    const config = loadConfig({
      env: {
        XPORTA_DATA_DIR: dir,
        XPORTA_LOG_LEVEL: 'silent',
        XPORTA_HOSTS: JSON.stringify({ localhost: {} }),
        XPORTA_STORAGE: JSON.stringify({ type: 'ejabberd-sql', driver: 'sqlite', schema, database: target.sqlitePath }),
        XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'ops', sha256: createHash('sha256').update(OPERATOR).digest('hex'), scopes: ['export', 'import', 'admin'] }]),
      },
      cwd: dir,
    });
    const app = buildApp({ config, storage: await openStorage(config), logger: false });
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const res = await upload(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
      const text = await res.text();
      expect(res.status, text).toBe(200);
      const report = JSON.parse(text) as { users: { user: string; error?: string }[] };
      expect(report.users.map((u) => (u.error !== undefined ? `${u.user}: ${u.error}` : u.user))).toEqual(['alice@localhost', 'bob@localhost', 'carol@localhost']);
      expect((await readdir(join(dir, 'spool'))).length).toBe(0);
    } catch (err) {
      await target.stop();
      throw err;
    } finally {
      await app.close();
      await rm(dir, { recursive: true, force: true });
    }
    return target;
  }

  async function expectAccountsLogIn(target: EjabberdHandle): Promise<void> {
    await target.clearCache();
    // export_piefxis writes no PEP and no archive; the offline messages keep their send times.
    expectServesSame(await probeAccount(aliceOn(target), { pepNodes: [NICK] }), sourceAlice, ['pep', 'archive']);
    const bob = await connectClient({ service: target.service, domain: 'localhost', username: 'bob', password: 'pw' });
    await bob.close();
    expect(target.logErrors()).toEqual([]);
  }

  describe('export_piefxis', () => {
    it('the main file and its included host file as one multipart upload: every account logs in; alice serves the source roster, vCard and offline send times', async () => {
      const files = await readdir(exportDir);
      const main = files.find((f) => MAIN_FILE.test(f));
      const included = files.filter((f) => f !== main);
      expect(main).toBeDefined();
      expect(included).toEqual([(main ?? '').replace('.xml', '_localhost.xml')]);
      const mainText = await readFile(join(exportDir, main ?? ''), 'utf8');
      for (const f of included) expect(mainText).toContain(`href='${f}'`);

      const target = await importInto(async (base) => {
        const form = new FormData();
        form.append('file', new Blob([await readFile(join(exportDir, main ?? ''))], { type: 'application/xml' }), main);
        for (const f of included) form.append('include', new Blob([await readFile(join(exportDir, f))], { type: 'application/xml' }), f);
        return fetch(`${base}/v1/hosts/localhost/import?createAccount=true&mode=replace`, { method: 'PUT', headers: { authorization: `Bearer ${OPERATOR}` }, body: form });
      });
      try {
        await expectAccountsLogIn(target);
      } finally {
        await target.stop();
      }
    }, 180_000);
  });

  describe('export_piefxis_host', () => {
    it('the <host>-rooted host file as application/xml: every account logs in; alice serves the source roster, vCard and offline send times', async () => {
      const hostFiles = (await readdir(hostDir)).filter((f) => f.endsWith('_localhost.xml'));
      expect(hostFiles).toHaveLength(1);
      const body = await readFile(join(hostDir, hostFiles[0] ?? ''));
      expect(body.toString('utf8')).toMatch(/^<\?xml[^>]*>\s*<host /);

      const target = await importInto((base) =>
        fetch(`${base}/v1/hosts/localhost/import?createAccount=true&mode=replace`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/xml' },
          body,
        }),
      );
      try {
        await expectAccountsLogIn(target);
      } finally {
        await target.stop();
      }
    }, 180_000);
  });

  it('the source ejabberd logged no error', () => {
    expect(source.logErrors()).toEqual([]);
  });
}, version);
