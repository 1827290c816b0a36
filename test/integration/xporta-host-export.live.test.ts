/**
 * xporta's own host export (`xporta export --host`) of a Prosody filled by real clients, imported
 * through `xporta import --host` and through `PUT /v1/hosts/{host}/import` into a fresh Prosody.
 * Every account logs in with its password, and alice serves the source's roster, vCard, PEP
 * items, archive count and offline messages with their original send times.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runExport } from '../../src/cli/commands.js';
import { runHostImport } from '../../src/cli/host-import.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import { expectServesSame, probeAccount, type ServedAccount } from '../support/account-probe.js';
import { populateAccount, type PopulateSummary } from '../support/populate.js';
import { describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { loginAs } from '../support/xmpp-client.js';
import { putXml, withXportaHttp } from '../support/xporta-http.js';

describeWithProsody('xporta export --host of a Prosody → xporta import (CLI, HTTP) → Prosody', () => {
  let work: string;
  let summary: PopulateSummary;
  let hostDoc: string;
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
      const out = createWriteStream(hostDoc);
      await runExport(await configFor(source, 'source'), { target: 'localhost', host: true }, out);
      out.end();
      await finished(out);
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
});
