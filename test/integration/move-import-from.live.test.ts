/**
 * A provider-to-provider move: two real Prosody servers (SQLite and PostgreSQL), an xporta in
 * front of each, the new one pulling the account from the old one with import-from. Then alice
 * logs in to the new server with her old password and finds her data.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.js';
import { buildApp } from '../../src/http/server.js';
import { openStorage } from '../../src/storage/open.js';
import { populateAccount, type PopulateSummary } from '../support/populate.js';
import { describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { getBlocklist, getPepItems, getRoster, loginAs, queryMam } from '../support/xmpp-client.js';

const TOKEN = 'move-test-operator-token';

function xportaConfig(dir: string, storage: object): Config {
  return loadConfig({
    env: {
      XPORTA_DATA_DIR: dir,
      XPORTA_LOG_LEVEL: 'silent',
      // Both xportas listen on loopback, which the outgoing-request policy refuses by default.
      XPORTA_OUTGOING: JSON.stringify({ allow: ['127.0.0.0/8'] }),
      XPORTA_STORAGE: JSON.stringify(storage),
      XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 't', sha256: createHash('sha256').update(TOKEN).digest('hex'), scopes: ['export', 'import', 'admin'] }]),
    },
    cwd: dir,
  });
}

async function xportaFor(prosody: ProsodyHandle, dir: string): Promise<FastifyInstance> {
  const storage =
    prosody.storage === 'sqlite'
      ? { type: 'prosody-sql', driver: 'sqlite', database: join(prosody.rootDir, 'data', 'prosody.sqlite') }
      : {
          type: 'prosody-sql',
          driver: prosody.storage === 'postgres' ? 'postgres' : 'mysql',
          host: prosody.sql?.host,
          port: prosody.sql?.port,
          database: prosody.sql?.database,
          username: prosody.sql?.username,
          ...(prosody.sql?.password ? { password: prosody.sql.password } : {}),
        };
  const config = xportaConfig(dir, storage);
  return buildApp({ config, storage: await openStorage(config), logger: false });
}

describeWithProsody('moving an account between two Prosody servers with import-from', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-move-'));
  let oldServer: ProsodyHandle;
  let newServer: ProsodyHandle;
  let oldXporta: FastifyInstance;
  let newXporta: FastifyInstance;
  let summary: PopulateSummary;

  beforeAll(async () => {
    [oldServer, newServer] = await Promise.all([startProsody({ storage: 'sqlite' }), startProsody({ storage: 'postgres' })]);
    summary = await populateAccount(oldServer, { messages: 40 });
    oldXporta = await xportaFor(oldServer, join(dir, 'old'));
    newXporta = await xportaFor(newServer, join(dir, 'new'));
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled([oldXporta?.close(), newXporta?.close()]);
    await Promise.allSettled([oldServer?.stop(), newServer?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('pulls the whole account from the old xporta into the new server', async () => {
    const origin = await oldXporta.listen({ host: '127.0.0.1', port: 0 });
    const res = await newXporta.inject({
      method: 'POST',
      url: '/v1/users/alice%40localhost/import-from',
      headers: { authorization: `Bearer ${TOKEN}` },
      payload: { url: `${origin}/v1/users/alice%40localhost/export`, token: TOKEN, createAccount: true },
    });
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json<{ created: boolean; counts: Record<string, number>; warnings: string[] }>();
    expect(report.created).toBe(true);
    expect(report.counts.archive).toBe(summary.archive.messages.length);
    expect(report.warnings).toEqual([]);
  });

  it('alice logs in to the new server with her old password and finds her data', async () => {
    const alice = await loginAs(newServer, 'alice', summary.alice.password);
    try {
      const roster = await getRoster(alice);
      expect(roster.map((i) => i.jid).sort()).toEqual(summary.roster.items.map((i) => i.jid));
      expect((await getBlocklist(alice)).sort()).toEqual([...summary.blocklist].sort());
      const archive = await queryMam(alice, { max: 50 });
      expect(archive.map((m) => m.id)).toEqual(summary.archive.messages.map((m) => m.id));
      for (const node of summary.pep.filter((n) => n.items.length > 0)) {
        const items = await getPepItems(alice, undefined, node.node);
        expect(items.map((i) => i.id).sort(), node.node).toEqual(node.items.map((i) => i.id).sort());
      }
    } finally {
      await alice.close();
    }
  });
});
