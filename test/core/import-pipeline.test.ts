/**
 * Acceptance for the one import pipeline (src/core/import-pipeline.ts): every face that imports
 * into an account goes through it, so each one takes the account's lease (an import while
 * another operation holds the account is refused), counts the import in the metrics (the real
 * /metrics text, or the CLI run's own registry) and tells the registered notifier. Real parts
 * throughout: the embedded SQLite store in a temp directory, the real HTTP app listening on
 * loopback (import-from and the move's copy call it back through the outgoing-request policy),
 * the CLI's import function on the same store. The component's face is in
 * test/xmpp/import-pipeline.test.ts (it needs Prosody).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runImport } from '../../src/cli/commands.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import type { ImportFinished } from '../../src/core/context.js';
import { BusyError } from '../../src/core/errors.js';
import { AccountLocks, crossProcessLocker, type Lease } from '../../src/core/locks.js';
import { Metrics } from '../../src/core/metrics.js';
import { buildApp } from '../../src/http/server.js';
import { openStorage } from '../../src/storage/open.js';
import { accountDocument } from '../support/documents.js';
import { parsePrometheusText } from '../support/prometheus-text.js';

const TOKEN = 'import-faces-operator-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const xml = { ...auth, 'content-type': 'application/xml' };

/** A counter's value in a Prometheus text exposition, 0 when the sample is absent. */
function sample(text: string, family: string, labels: Record<string, string>, name = family): number {
  // xporta's own families only: a process metric may read NaN early in a run.
  const own = text
    .split('\n')
    .filter((line) => /^(# (HELP|TYPE) )?xporta_/.test(line))
    .join('\n');
  const found = parsePrometheusText(`${own}\n`)
    .get(family)
    ?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found?.value ?? 0;
}

function hostDocument(host: string, users: readonly string[]): string {
  const bodies = users.map((user) => accountDocument({ host, user, password: 'pw' }).replace(/^[\s\S]*?(<user )/, '$1').replace(/<\/host>[\s\S]*$/, ''));
  return `<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'><host jid='${host}'>${bodies.join('')}</host></server-data>`;
}

describe('every import face goes through the one pipeline: lease, metrics, notifier', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-faces-'));
  let config: Config;
  let app: ReturnType<typeof buildApp>;
  let base: string;
  const notified: ImportFinished[] = [];

  const metricsText = async (): Promise<string> => (await app.inject({ method: 'GET', url: '/metrics', headers: auth })).body;
  const hold = async (jid: string): Promise<Lease> => {
    const lease = await app.ctx.locks.tryAcquire(jid, 'exclusive');
    if (!lease) throw new Error(`could not hold ${jid}`);
    return lease;
  };
  const notices = (source: string, jid: string): ImportFinished[] => notified.filter((e) => e.source === source && e.jid === jid);

  beforeAll(async () => {
    config = loadConfig({
      env: {
        XPORTA_DATA_DIR: dir,
        XPORTA_LOG_LEVEL: 'silent',
        // import-from and the move's copy call this same service back on loopback.
        XPORTA_OUTGOING: JSON.stringify({ allow: ['127.0.0.0/8'] }),
        XPORTA_AUTH__USER_TOKEN_SECRET: 'u'.repeat(40),
        XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'all', sha256: sha256Hex(TOKEN), scopes: ['export', 'import', 'admin'] }]),
      },
      cwd: dir,
    });
    app = buildApp({ config, storage: await openStorage(config), logger: false });
    app.ctx.notifier = { importFinished: (event) => notified.push(event) };
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('HTTP user import', async () => {
    const doc = accountDocument({ host: 'localhost', user: 'alice', password: 'pw' });
    const url = '/v1/users/alice%40localhost/import?createAccount=true';
    const lease = await hold('alice@localhost');
    const refused = await app.inject({ method: 'PUT', url, headers: xml, payload: doc });
    lease.release();
    expect(refused.statusCode, refused.body).toBe(409);
    const before = sample(await metricsText(), 'xporta_imports_total', { source: 'upload', outcome: 'ok' });
    const done = await app.inject({ method: 'PUT', url, headers: xml, payload: doc });
    expect(done.statusCode, done.body).toBe(200);
    expect(sample(await metricsText(), 'xporta_imports_total', { source: 'upload', outcome: 'ok' })).toBe(before + 1);
    expect(notices('upload', 'alice@localhost')).toHaveLength(1);
  });

  it('HTTP host import', async () => {
    const doc = hostDocument('localhost', ['bob', 'bea']);
    const url = '/v1/hosts/localhost/import?createAccount=true&mode=replace';
    const lease = await hold('bob@localhost');
    const partly = await app.inject({ method: 'PUT', url, headers: xml, payload: doc });
    lease.release();
    expect(partly.statusCode, partly.body).toBe(200);
    const users = partly.json<{ users: { user: string; error?: string }[] }>().users;
    expect(users.find((u) => u.user === 'bob@localhost')?.error).toMatch(/^conflict: another operation on bob@localhost is running/);
    expect(notices('host', 'bob@localhost')).toHaveLength(0);
    expect(notices('host', 'bea@localhost')).toHaveLength(1);
    const labels = { direction: 'import', dry_run: 'false', outcome: 'ok' };
    const before = sample(await metricsText(), 'xporta_host_transfers_total', labels);
    const done = await app.inject({ method: 'PUT', url, headers: xml, payload: doc });
    expect(done.statusCode, done.body).toBe(200);
    expect(sample(await metricsText(), 'xporta_host_transfers_total', labels)).toBe(before + 1);
    expect(notices('host', 'bob@localhost')).toHaveLength(1);
  });

  it('HTTP import-from (a pull from another service, here this one)', async () => {
    const payload = { url: `${base}/v1/users/alice%40localhost/export`, token: TOKEN, createAccount: true };
    const url = '/v1/users/carol%40localhost/import-from';
    const lease = await hold('carol@localhost');
    const refused = await app.inject({ method: 'POST', url, headers: auth, payload });
    lease.release();
    expect(refused.statusCode, refused.body).toBe(409);
    const before = sample(await metricsText(), 'xporta_imports_total', { source: 'url', outcome: 'ok' });
    const done = await app.inject({ method: 'POST', url, headers: auth, payload });
    expect(done.statusCode, done.body).toBe(200);
    const text = await metricsText();
    expect(sample(text, 'xporta_imports_total', { source: 'url', outcome: 'ok' })).toBe(before + 1);
    expect(sample(text, 'xporta_operation_duration_seconds', { operation: 'import_from', outcome: 'ok' }, 'xporta_operation_duration_seconds_count')).toBeGreaterThan(0);
    expect(notices('url', 'carol@localhost')).toHaveLength(1);
  });

  it('CLI import (on the same store, under the lease every process honours)', async () => {
    const file = join(dir, 'dave.xml');
    writeFileSync(file, accountDocument({ host: 'localhost', user: 'dave', password: 'pw' }));
    const metrics = new Metrics({ processMetrics: false });
    const cliNotices: ImportFinished[] = [];
    const services = { metrics, notifier: { importFinished: (event: ImportFinished) => cliNotices.push(event) } };
    const args = { jid: 'dave@localhost', file, createAccount: true };
    // The service holds the account: the CLI in its own process would see the same cross-process lock.
    const lease = await hold('dave@localhost');
    await expect(runImport(config, args, new PassThrough(), services)).rejects.toBeInstanceOf(BusyError);
    lease.release();
    const report = await runImport(config, args, new PassThrough(), services);
    expect(report.created).toBe(true);
    expect(sample(await metrics.render(), 'xporta_imports_total', { source: 'cli', outcome: 'ok' })).toBe(1);
    expect(cliNotices.map((e) => [e.source, e.jid])).toEqual([['cli', 'dave@localhost']]);
  });

  it('the CLI is held off by a lease another process took on the storage', async () => {
    const storage = await openStorage(config);
    try {
      const other = await new AccountLocks(crossProcessLocker(config, storage)).tryAcquire('dave@localhost', 'exclusive');
      expect(other).toBeDefined();
      const file = join(dir, 'dave.xml');
      await expect(runImport(config, { jid: 'dave@localhost', file }, new PassThrough())).rejects.toBeInstanceOf(BusyError);
      other?.release();
    } finally {
      await storage.close();
    }
  });

  it('the move: its statement is an import into the old account, its copy one into the new account', async () => {
    const erin = await app.inject({ method: 'PUT', url: '/v1/users/erin%40localhost/import?createAccount=true', headers: xml, payload: accountDocument({ host: 'localhost', user: 'erin', password: 'pw' }) });
    expect(erin.statusCode, erin.body).toBe(200);
    const importLink = async (): Promise<string> => {
      const minted = await app.inject({ method: 'POST', url: '/v1/users/erin%40localhost/tokens', headers: auth, payload: { scopes: ['import'], ttlSeconds: 600 } });
      expect(minted.statusCode, minted.body).toBe(201);
      return `${base}/v1/users/erin%40localhost/import?mode=merge&token=${minted.json<{ token: string }>().token}`;
    };
    const url = '/v1/users/alice%40localhost/moved';
    const lease = await hold('alice@localhost');
    const refused = await app.inject({ method: 'POST', url, headers: auth, payload: { newJid: 'erin@localhost', importUrl: await importLink() } });
    lease.release();
    expect(refused.statusCode, refused.body).toBe(409);
    const text = await metricsText();
    const moves = sample(text, 'xporta_imports_total', { source: 'move', outcome: 'ok' });
    const uploads = sample(text, 'xporta_imports_total', { source: 'upload', outcome: 'ok' });
    const moved = await app.inject({ method: 'POST', url, headers: auth, payload: { newJid: 'erin@localhost', importUrl: await importLink() } });
    expect(moved.statusCode, moved.body).toBe(200);
    expect(moved.json()).toMatchObject({ statement: { published: true, via: 'storage' }, copied: { user: 'erin@localhost' } });
    const after = await metricsText();
    expect(sample(after, 'xporta_imports_total', { source: 'move', outcome: 'ok' })).toBe(moves + 1);
    expect(sample(after, 'xporta_imports_total', { source: 'upload', outcome: 'ok' })).toBe(uploads + 1);
    expect(notices('move', 'alice@localhost')).toHaveLength(1);
    expect(notices('upload', 'erin@localhost')).toHaveLength(2);
  });

  it('releases every lease and slot on every path', () => {
    expect(app.ctx.importSlots.inUse).toBe(0);
    for (const user of ['alice', 'bob', 'bea', 'carol', 'dave', 'erin']) expect(app.ctx.locks.isBusy(`${user}@localhost`)).toBe(false);
  });
});
