/**
 * The HTTP faces of the pull (import-from-xmpp as a job, xmpp-export) for what needs no remote
 * server: refusals answered at once, before any job exists (pull slots full, a login refused by
 * the outgoing policy), the operator-only export, and the password nowhere in the answers, the
 * jobs or the audit log. The job flow against real servers: test/integration/pull-xmpp.live.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import { buildApp } from '../../src/http/server.js';
import { openStorage } from '../../src/storage/open.js';
import { accountDocument } from '../support/documents.js';
import { filesUnder } from '../support/paths.js';

const TOKEN = 'pull-faces-operator-token';
const IMPORT_ONLY = 'pull-faces-import-only-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const PASSWORD = 'Old-Secret-Pa55word';

describe('import-from-xmpp and xmpp-export without a remote server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-pull-faces-'));
  let app: ReturnType<typeof buildApp>;

  beforeAll(async () => {
    const config = loadConfig({
      env: {
        XPORTA_DATA_DIR: dir,
        XPORTA_LOG_LEVEL: 'silent',
        XPORTA_AUDIT: JSON.stringify({ file: join(dir, 'audit.log') }),
        // Nothing allowed: every pull is refused before a connection.
        XPORTA_OUTGOING: JSON.stringify({ allow: [] }),
        XPORTA_XMPP_CLIENT: JSON.stringify({ services: ['old.test=127.0.0.1:9'], maxConcurrentPulls: 1 }),
        XPORTA_AUTH__USER_TOKEN_SECRET: 'u'.repeat(40),
        XPORTA_AUTH__TOKENS: JSON.stringify([
          { name: 'all', sha256: sha256Hex(TOKEN), scopes: ['export', 'import', 'admin'] },
          { name: 'imp', sha256: sha256Hex(IMPORT_ONLY), scopes: ['import'] },
        ]),
      },
      cwd: dir,
    });
    app = buildApp({ config, storage: await openStorage(config), logger: false });
    const made = await app.inject({
      method: 'PUT',
      url: '/v1/users/alice%40localhost/import?createAccount=true',
      headers: { ...auth, 'content-type': 'application/xml' },
      payload: accountDocument({ host: 'localhost', user: 'alice', password: 'pw' }),
    });
    expect(made.statusCode, made.body).toBe(200);
  });

  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const pull = (payload: object, headers: Record<string, string> = auth) =>
    app.inject({ method: 'POST', url: '/v1/users/alice%40localhost/import-from-xmpp', headers, payload });

  it('a login refused is a problem at once, and no job is made', async () => {
    const res = await pull({ jid: 'alice@old.test', password: PASSWORD });
    expect(res.statusCode, res.body).toBe(422);
    expect(res.json<{ type: string }>().type).toBe('urn:xporta:problem:xmpp-address-refused');
    const jobs = await app.inject({ method: 'GET', url: '/v1/jobs', headers: auth });
    expect(jobs.json<{ jobs: unknown[] }>().jobs).toEqual([]);
    expect(app.ctx.pullSlots.inUse).toBe(0);
    expect(app.ctx.importSlots.inUse).toBe(0);
  });

  it('no free pull slot is 429 with Retry-After, for the import and the export', async () => {
    const held = app.ctx.pullSlots.tryTake();
    try {
      const res = await pull({ jid: 'alice@old.test', password: PASSWORD, dryRun: true });
      expect(res.statusCode, res.body).toBe(429);
      expect(res.headers['retry-after']).toBeDefined();
      expect(res.json<{ detail: string }>().detail).toMatch(/maxConcurrentPulls/);
      const exported = await app.inject({ method: 'POST', url: '/v1/xmpp-export', headers: auth, payload: { jid: 'alice@old.test', password: PASSWORD } });
      expect(exported.statusCode, exported.body).toBe(429);
    } finally {
      held?.release();
    }
  });

  it('the export needs an operator token with the export scope', async () => {
    const bad = await app.inject({ method: 'POST', url: '/v1/xmpp-export', headers: { authorization: `Bearer ${IMPORT_ONLY}` }, payload: { jid: 'alice@old.test', password: PASSWORD } });
    expect(bad.statusCode).toBe(403);
    const refused = await app.inject({ method: 'POST', url: '/v1/xmpp-export', headers: auth, payload: { jid: 'alice@old.test', password: PASSWORD } });
    expect(refused.statusCode).toBe(422);
    const noJid = await app.inject({ method: 'POST', url: '/v1/xmpp-export', headers: auth, payload: { jid: 'old.test', password: PASSWORD } });
    expect(noJid.statusCode).toBe(400);
    expect(app.ctx.pullSlots.inUse).toBe(0);
  });

  it("an account's job is read by that account's user token and the operators of its host, nobody else", async () => {
    const jobs = app.ctx.jobs;
    if (!jobs) throw new Error('no job store');
    const job = jobs.create({ id: 'pull-job-rights', type: 'xmpp-import', host: 'alice@localhost', progress: { done: 0, failed: 0, total: 1, records: 3, bytes: 0, messages: 2, archiveTotal: 10 } });
    const own = app.ctx.auth.mintUserToken({ jid: 'alice@localhost', scopes: ['import'], ttlSeconds: 60, singleUse: false }).token;
    const other = app.ctx.auth.mintUserToken({ jid: 'bob@localhost', scopes: ['import'], ttlSeconds: 60, singleUse: false }).token;
    const read = (token: string) => app.inject({ method: 'GET', url: `/v1/jobs/${job.id}`, headers: { authorization: `Bearer ${token}` } });
    expect((await read(own)).json()).toMatchObject({ id: job.id, progress: { messages: 2, archiveTotal: 10 } });
    expect((await read(TOKEN)).statusCode).toBe(200);
    expect((await read(other)).statusCode).toBe(404);
    const listed = await app.inject({ method: 'GET', url: '/v1/jobs', headers: { authorization: `Bearer ${other}` } });
    expect(listed.json<{ jobs: unknown[] }>().jobs).toEqual([]);
    jobs.finish(job.id, 'cancelled', {});
  });

  it('leaves the password in no answer and no file', async () => {
    for (const file of filesUnder(dir)) expect(readFileSync(file, 'latin1'), file).not.toContain(PASSWORD);
    expect(readFileSync(join(dir, 'audit.log'), 'utf8')).toMatch(/import/);
  });
});
