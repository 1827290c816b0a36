/**
 * `xporta import --host`: documents with any number of users, as xporta's `export --host` and
 * ejabberd's `export_piefxis` (main file + XIncluded host file) and `export_piefxis_host`
 * (a `<host>` root) write them, into the embedded SQLite store and, live, into a real ejabberd.
 */
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runExport, runImport } from '../../src/cli/commands.js';
import { runHostImport, type HostImportReport } from '../../src/cli/host-import.js';
import { HostReportStream } from '../../src/cli/host-report-stream.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import type { ApplyReport } from '../../src/storage/backend.js';
import { openStorage } from '../../src/storage/open.js';
import { Xep0227Error } from '../../src/xep0227/errors.js';
import { accountDocument, deriveScram, scramXml } from '../support/documents.js';
import { describeWithEjabberd, skipWithoutEjabberd, startEjabberd, type EjabberdHandle, type EjabberdVersion } from '../support/ejabberd.js';
import { EJ_ALICE_PASSWORD, populateEjabberdAlice } from '../support/ejabberd-populate.js';
import { expectServesSame, probeAccount, type ServedAccount } from '../support/account-probe.js';
import { connectClient } from '../support/xmpp-client.js';
import { FIXTURES_DIR } from '../support/paths.js';

const FIXTURE_DIR = join(FIXTURES_DIR, 'ejabberd', 'export_piefxis');
const EMPTY = Readable.from([]);

async function makeConfig(dir: string, storage?: object, hosts: object = { localhost: {} }): Promise<Config> {
  const path = join(dir, 'config.json');
  await writeFile(
    path,
    JSON.stringify({
      dataDir: dir,
      storage: storage ?? { type: 'prosody-sql', driver: 'sqlite', database: join(dir, 'store.sqlite') },
      hosts,
      audit: { file: join(dir, 'audit.log') },
    }),
  );
  return loadConfig({ configPath: path, env: {} });
}

async function exportText(config: Config, target: string, host = false): Promise<string> {
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  await runExport(config, { target, ...(host ? { host: true } : {}) }, out);
  return text;
}

function okUsers(result: { users: readonly (ApplyReport | { user: string; error: string })[] }): string[] {
  return result.users.map((u) => ('error' in u ? `${u.user}: ${u.error}` : u.user));
}

async function mainFile(dir: string): Promise<string> {
  const files = (await readdir(dir)).filter((f) => /^\d{8}-\d{6}\.xml$/.test(f));
  if (files.length !== 1 || !files[0]) throw new Error(`expected one main export file in ${dir}, got ${files.join(', ')}`);
  return join(dir, files[0]);
}

describe('xporta import --host', () => {
  let dir: string;
  let config: Config;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xporta-host-cli-'));
    config = await makeConfig(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("imports ejabberd's export_piefxis main file, following its XInclude", async () => {
    const report = await runHostImport(config, { file: join(FIXTURE_DIR, '20261123-190538.xml'), createAccount: true }, EMPTY);
    expect(report.hosts).toHaveLength(1);
    expect(okUsers(report.hosts[0] ?? { users: [] })).toEqual(['alice@localhost', 'bob@localhost', 'carol@localhost']);
    const alice = await exportText(config, 'alice@localhost');
    expect(alice).toContain("jid='bob@localhost'");
    expect(alice).toContain('hello alice');
    expect(alice).toContain('<FN>Alice Example</FN>');
  });

  it('writes the report as it goes when given a stream, the same JSON as the whole report', async () => {
    let text = '';
    const report = await runHostImport(config, { file: join(FIXTURE_DIR, '20261123-190538.xml'), createAccount: true }, EMPTY, {}, new HostReportStream((chunk) => (text += chunk)));
    expect(report.hosts[0]?.users).toEqual([]);
    expect(report.hosts[0]?.progress).toMatchObject({ done: 3, failed: 0 });
    const streamed = JSON.parse(text) as HostImportReport;
    expect(okUsers(streamed.hosts[0] ?? { users: [] })).toEqual(['alice@localhost', 'bob@localhost', 'carol@localhost']);
    expect(streamed.hosts[0]?.progress).toEqual(report.hosts[0]?.progress);
    expect(streamed.skippedHosts).toEqual([]);
  });

  it('imports a <host>-rooted file (export_piefxis_host) as one host', async () => {
    const report = await runHostImport(config, { file: join(FIXTURE_DIR, '20261123-190538_localhost.xml'), createAccount: true }, EMPTY);
    expect(okUsers(report.hosts[0] ?? { users: [] })).toEqual(['alice@localhost', 'bob@localhost', 'carol@localhost']);
    expect(report.skippedHosts).toEqual([]);
  });

  it("imports xporta's own export --host output from standard input, and a single-user import takes a <host> root", async () => {
    const doc = accountDocument({ host: 'localhost', user: 'alice', password: 'pw' });
    const other = accountDocument({ host: 'localhost', user: 'zed', password: 'pw2' });
    await writeFile(join(dir, 'a.xml'), doc);
    await writeFile(join(dir, 'z.xml'), other);
    await runImport(config, { jid: 'alice@localhost', file: join(dir, 'a.xml'), createAccount: true }, EMPTY);
    await runImport(config, { jid: 'zed@localhost', file: join(dir, 'z.xml'), createAccount: true }, EMPTY);
    const hostDoc = await exportText(config, 'localhost', true);

    const dir2 = await mkdtemp(join(tmpdir(), 'xporta-host-cli-'));
    try {
      const config2 = await makeConfig(dir2);
      const report = await runHostImport(config2, { file: '-', createAccount: true }, Readable.from([Buffer.from(hostDoc)]));
      expect(okUsers(report.hosts[0] ?? { users: [] }).sort()).toEqual(['alice@localhost', 'zed@localhost']);
      expect(await exportText(config2, 'localhost', true)).toBe(hostDoc);
      // The spooled copy of standard input is gone.
      expect((await readdir(join(dir2, 'spool'))).filter((f) => f.startsWith('cli-host-import-'))).toEqual([]);

      // The host element alone, with the namespace declarations of <server-data>.
      const declarations = /<server-data ([^>]*)>/.exec(hostDoc)?.[1] ?? '';
      const hostRooted = hostDoc.replace(/^[\s\S]*?<host /, `<host ${declarations} `).replace(/<\/server-data>\s*$/, '');
      await writeFile(join(dir2, 'one.xml'), hostRooted.replace(/<user name='zed'[\s\S]*?<\/user>/, ''));
      const one = await runImport(config2, { jid: 'alice@localhost', file: join(dir2, 'one.xml') }, EMPTY);
      expect(one.user).toBe('alice@localhost');
    } finally {
      await rm(dir2, { recursive: true, force: true });
    }
  });

  it('changes nothing when the tail of the document is broken', async () => {
    const text = await readFile(join(FIXTURE_DIR, '20261123-190538_localhost.xml'), 'utf8');
    const broken = join(dir, 'broken.xml');
    await writeFile(broken, text.replace(/<\/host>\s*$/, '<user name="x"><oops></host>'));
    await expect(runHostImport(config, { file: broken, createAccount: true }, EMPTY)).rejects.toBeInstanceOf(Xep0227Error);
    const storage = await openStorage(config);
    try {
      expect(await storage.userExists({ host: 'localhost', user: 'alice' })).toBe(false);
    } finally {
      await storage.close();
    }
  });

  it('refuses a document whose host is not served, unless another host is named', async () => {
    const twoHosts = `<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='a'/></host><host jid='elsewhere.example'><user name='b'/></host></server-data>`;
    await writeFile(join(dir, 'two.xml'), twoHosts);
    await expect(runHostImport(config, { file: join(dir, 'two.xml'), createAccount: true }, EMPTY)).rejects.toThrow(/elsewhere\.example is not in the configuration/);
    const report = await runHostImport(config, { file: join(dir, 'two.xml'), host: 'localhost', createAccount: true }, EMPTY);
    expect(okUsers(report.hosts[0] ?? { users: [] })).toEqual(['a@localhost']);
    expect(report.skippedHosts).toEqual(['elsewhere.example']);
  });

  it('labels SCRAM credentials by key length, warns when the label disagrees, and never reads them when excluded', async () => {
    // prosody-migrator on a SHA-256 host labels the 32-byte keys SCRAM-SHA-1.
    const sha256 = deriveScram('pw', 'SCRAM-SHA-256');
    const mislabelled = scramXml(sha256).replace("mechanism='SCRAM-SHA-256'", "mechanism='SCRAM-SHA-1'");
    await writeFile(join(dir, 'm.xml'), `<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='m'>${mislabelled}<vCard xmlns='vcard-temp'><FN>M</FN></vCard></user></host></server-data>`);
    const sha256Config = await makeConfig(dir, undefined, { localhost: { passwordHash: 'SHA-256' } });
    const report = await runHostImport(sha256Config, { file: join(dir, 'm.xml'), createAccount: true }, EMPTY);
    const user = report.hosts[0]?.users[0] as ApplyReport;
    expect(user.warnings).toContain('credentials labelled SCRAM-SHA-1 have 32-byte keys: imported as SCRAM-SHA-256');
    const exported = await exportText(sha256Config, 'm@localhost');
    expect(exported).toContain("mechanism='SCRAM-SHA-256'");
    expect(exported).toContain(`<stored-key>${sha256.storedKey}</stored-key>`);

    // Keys of no SCRAM length fail the document, but not when credentials are excluded.
    await writeFile(join(dir, 'bad.xml'), `<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='n'>${mislabelled.replace(/<server-key>[^<]*/, '<server-key>AAAA')}<vCard xmlns='vcard-temp'><FN>N</FN></vCard></user></host></server-data>`);
    await expect(runHostImport(config, { file: join(dir, 'bad.xml'), createAccount: true }, EMPTY)).rejects.toThrow(/must be 20 \(SHA-1\) or 32 \(SHA-256\) bytes/);
    const excluded = await runHostImport(config, { file: join(dir, 'bad.xml'), createAccount: true, exclude: 'credentials' }, EMPTY);
    expect(okUsers(excluded.hosts[0] ?? { users: [] })).toEqual(['n@localhost']);
  });
});

const NICK = 'http://jabber.org/protocol/nick';
const aliceOn = (ej: EjabberdHandle) => ({ service: ej.service, domain: 'localhost', username: 'alice', password: EJ_ALICE_PASSWORD });

describeWithEjabberd('ejabberd export_piefxis / export_piefxis_host → xporta import --host → ejabberd', () => {
  // 24.12 with the form the others share most code with, to keep the run short.
  const variants: readonly { version: EjabberdVersion; schema: 'new' | 'default'; forms: readonly ('export_piefxis' | 'export_piefxis_host')[] }[] = [
    { version: '23.01', schema: 'new', forms: ['export_piefxis', 'export_piefxis_host'] },
    { version: '23.01', schema: 'default', forms: ['export_piefxis', 'export_piefxis_host'] },
    { version: '24.12', schema: 'new', forms: ['export_piefxis'] },
  ];
  for (const { version, schema, forms } of variants) {
    describe.skipIf(skipWithoutEjabberd(version))(`${version}, ${schema} schema`, () => {
      let source: EjabberdHandle;
      let exportDir: string;
      let hostDir: string;
      let sourceAlice: ServedAccount;

      beforeAll(async () => {
        source = await startEjabberd({ version, newSchema: schema === 'new' });
        await populateEjabberdAlice(source);
        exportDir = await mkdtemp(join(tmpdir(), 'xporta-piefxis-'));
        hostDir = await mkdtemp(join(tmpdir(), 'xporta-piefxis-host-'));
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

      for (const form of forms) {
        it(`${form}: every account logs in to a fresh ejabberd; alice serves the source's roster, vCard and offline messages with their send times`, async () => {
          const target = await startEjabberd({ version, newSchema: schema === 'new' });
          const dir = await mkdtemp(join(tmpdir(), 'xporta-host-cli-'));
          try {
            const config = await makeConfig(dir, { type: 'ejabberd-sql', driver: 'sqlite', schema, database: target.sqlitePath });
            let file: string;
            if (form === 'export_piefxis') {
              file = await mainFile(exportDir);
            } else {
              // export_piefxis_host writes a main file too; its host file alone, copied elsewhere, is a <host> root.
              const files = (await readdir(hostDir)).filter((f) => f.endsWith('_localhost.xml'));
              expect(files).toHaveLength(1);
              file = join(dir, 'host.xml');
              await copyFile(join(hostDir, files[0] ?? ''), file);
              expect(await readFile(file, 'utf8')).toMatch(/^<\?xml[^>]*>\s*<host /);
            }
            const report = await runHostImport(config, { file, createAccount: true, mode: 'replace' }, EMPTY);
            expect(okUsers(report.hosts[0] ?? { users: [] })).toEqual(['alice@localhost', 'bob@localhost', 'carol@localhost']);
            await target.clearCache();
            // export_piefxis writes no PEP and no archive; the offline messages keep their send times.
            expectServesSame(await probeAccount(aliceOn(target), { pepNodes: [NICK] }), sourceAlice, ['pep', 'archive']);
            const bob = await connectClient({ service: target.service, domain: 'localhost', username: 'bob', password: 'pw' });
            await bob.close();
          } finally {
            await target.stop();
            await rm(dir, { recursive: true, force: true });
          }
        }, 120_000);
      }
    });
  }
});
