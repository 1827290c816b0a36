/**
 * xporta's own host export (`xporta export --host`) of a Prosody filled by real clients, imported
 * through `xporta import --host` and through `PUT /v1/hosts/{host}/import` into a fresh Prosody.
 * Every account logs in with its password, and alice serves the source's roster, vCard, PEP
 * items, archive count and offline messages with their original send times.
 *
 * Alice's single-user export imported into other JIDs (a rename, through the CLI and the HTTP user
 * route) logs in with her password, keeps her roster's names and groups, claims none of the
 * subscriptions the contacts gave alice, and the report lists those contacts to ask again.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runExport, runImport } from '../../src/cli/commands.js';
import { runHostImport } from '../../src/cli/host-import.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import { expectServesSame, probeAccount, type ServedAccount } from '../support/account-probe.js';
import { populateAccount, type PopulateSummary } from '../support/populate.js';
import { describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { getRoster, loginAs } from '../support/xmpp-client.js';
import { putXml, withXportaHttp } from '../support/xporta-http.js';

describeWithProsody('xporta export --host of a Prosody → xporta import (CLI, HTTP) → Prosody', () => {
  let work: string;
  let summary: PopulateSummary;
  let hostDoc: string;
  let aliceDoc: string;
  let sourceAlice: ServedAccount;
  let pepNodes: string[];

  async function configFor(prosody: ProsodyHandle, name: string): Promise<Config> {
    const path = join(work, `${name}.json`);
    await writeFile(
      path,
      JSON.stringify({
        dataDir: join(work, `xporta-${name}`),
        storage: { type: 'prosody-sql', driver: 'sqlite', database: prosody.sql?.database },
        hosts: { localhost: {} },
        audit: { file: join(work, `${name}-audit.log`) },
      }),
    );
    return loadConfig({ configPath: path, env: {} });
  }

  const aliceOn = (p: ProsodyHandle) => ({ service: p.service, domain: 'localhost', username: 'alice', password: summary.alice.password });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'xporta-own-host-export-'));
    const source = await startProsody({ dir: join(work, 'source') });
    try {
      summary = await populateAccount(source, { messages: 4 });
      hostDoc = join(work, 'host.xml');
      aliceDoc = join(work, 'alice.xml');
      const sourceConfig = await configFor(source, 'source');
      for (const [file, args] of [
        [hostDoc, { target: 'localhost', host: true }],
        [aliceDoc, { target: summary.alice.jid }],
      ] as const) {
        const out = createWriteStream(file);
        await runExport(sourceConfig, args, out);
        out.end();
        await finished(out);
      }
      // After the export: the probe consumes alice's offline messages.
      pepNodes = summary.pep.map((n) => n.node);
      sourceAlice = await probeAccount(aliceOn(source), { pepNodes });
    } finally {
      await source.stop();
    }
    expect(sourceAlice.archiveCount).toBe(summary.archive.messages.length);
    expect(sourceAlice.offline.map((o) => o.body)).toEqual(summary.offline.map((o) => o.body));
    expect(Object.values(sourceAlice.pep).every((items) => items.length > 0)).toBe(true);
  }, 120_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function expectServedOn(target: ProsodyHandle): Promise<void> {
    expectServesSame(await probeAccount(aliceOn(target), { pepNodes }), sourceAlice);
    for (const account of summary.accounts) if (account.user !== 'alice') await (await loginAs(target, account.user, account.password)).close();
  }

  it('xporta import --host: every account logs in; alice serves the source roster, vCard, PEP items, archive count and offline send times', async () => {
    const target = await startProsody({ dir: join(work, 'cli') });
    try {
      const report = await runHostImport(await configFor(target, 'cli'), { file: hostDoc, createAccount: true }, Readable.from([]));
      expect(report.hosts[0]?.users.map((u) => u.user)).toEqual(summary.accounts.map((a) => a.jid));
      await expectServedOn(target);
    } finally {
      await target.stop();
    }
  }, 120_000);

  it('PUT /v1/hosts/{host}/import: the same', async () => {
    const target = await startProsody({ dir: join(work, 'http') });
    try {
      await withXportaHttp({ type: 'prosody-sql', driver: 'sqlite', database: target.sql?.database }, { localhost: {} }, async (base, authorization) => {
        const report = (await putXml(`${base}/v1/hosts/localhost/import?createAccount=true`, authorization, await readFile(hostDoc))) as { users: { user: string; error?: string }[] };
        expect(report.users.map((u) => u.error ?? u.user)).toEqual(summary.accounts.map((a) => a.jid));
      });
      await expectServedOn(target);
    } finally {
      await target.stop();
    }
  }, 120_000);

  it('a rename (CLI and HTTP user route): the new JID logs in, claims no subscription the contacts gave alice, and the report lists them', async () => {
    // Every contact alice had a subscription state or a pending request with, either way.
    const toAsk = ['bob@localhost', 'carol@localhost', 'romeo@montague.example'];
    expect(sourceAlice.roster.map(([jid, , subscription, ask]) => `${jid} ${subscription} ${ask}`)).toEqual([
      'bob@localhost both ',
      'carol@localhost to ',
      'romeo@montague.example none subscribe',
    ]);
    const target = await startProsody({ dir: join(work, 'rename') });
    try {
      const cli = await runImport(await configFor(target, 'rename'), { jid: 'zoe@localhost', file: aliceDoc, createAccount: true }, Readable.from([]));
      expect(cli.contactsToAsk).toEqual(toAsk);
      await withXportaHttp({ type: 'prosody-sql', driver: 'sqlite', database: target.sql?.database }, { localhost: {} }, async (base, authorization) => {
        const report = (await putXml(`${base}/v1/users/yann@localhost/import?createAccount=true`, authorization, await readFile(aliceDoc))) as { contactsToAsk?: string[] };
        expect(report.contactsToAsk).toEqual(toAsk);
      });
      for (const user of ['zoe', 'yann']) {
        const client = await loginAs(target, user, summary.alice.password);
        try {
          const roster = (await getRoster(client)).map((r) => [r.jid, r.name ?? '', r.subscription, r.ask ?? '', [...r.groups].sort().join(',')]);
          expect(roster.sort()).toEqual(sourceAlice.roster.map(([jid, name, , , groups]) => [jid, name, 'none', '', groups]));
        } finally {
          await client.close();
        }
      }
    } finally {
      await target.stop();
    }
  }, 120_000);
});
