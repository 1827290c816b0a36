/**
 * The HTTP host import takes the documents peers write: ejabberd's `<host>`-rooted host file
 * (export_piefxis_host, written by a real ejabberd 23.01: the fixture), and the web migrator's
 * `application/xpie+xml`. Responses are checked against openapi.yaml.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { buildApp } from '../../src/http/server.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import { openStorage } from '../../src/storage/open.js';
import { accountDocument } from '../support/documents.js';
import { ContractChecker } from '../support/openapi.js';
import { FIXTURES_DIR } from '../support/paths.js';

const TOKEN = 'operator-host-import-secret';
const HOST_FILE = join(FIXTURES_DIR, 'ejabberd', 'export_piefxis', '20261123-190538_localhost.xml');
const contract = new ContractChecker();

describe('HTTP host import of peer documents', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-http-host-'));
  let app: FastifyInstance;

  beforeAll(async () => {
    const config = loadConfig({
      env: {
        XPORTA_DATA_DIR: dir,
        XPORTA_LOG_LEVEL: 'silent',
        XPORTA_HOSTS: JSON.stringify({ localhost: { passwordHash: 'SHA-1' } }),
        XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'all', sha256: sha256Hex(TOKEN), scopes: ['export', 'import', 'admin'], hosts: ['*'] }]),
      },
      cwd: dir,
    });
    app = buildApp({ config, storage: await openStorage(config), logger: false });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function put(url: string, template: string, type: string, payload: string): Promise<{ statusCode: number; json: () => Record<string, unknown> }> {
    const res = await app.inject({ method: 'PUT', url, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': type }, payload });
    contract.check('PUT', template, { statusCode: res.statusCode, headers: res.headers, body: res.body });
    return { statusCode: res.statusCode, json: () => JSON.parse(res.body) as Record<string, unknown> };
  }

  it("accepts ejabberd's <host>-rooted export_piefxis_host file as one host", async () => {
    const res = await put('/v1/hosts/localhost/import?createAccount=true', '/v1/hosts/{host}/import', 'application/xml', readFileSync(HOST_FILE, 'utf8'));
    expect(res.statusCode).toBe(200);
    const users = res.json().users as { user: string; error?: string }[];
    expect(users.map((u) => u.error ?? u.user)).toEqual(['alice@localhost', 'bob@localhost', 'carol@localhost']);
  });

  function multipart(parts: { field: string; filename: string; content: string }[]): { type: string; body: string } {
    const boundary = 'xporta-test-boundary-7f3a';
    const body =
      parts.map((p) => `--${boundary}\r\ncontent-disposition: form-data; name="${p.field}"; filename="${p.filename}"\r\ncontent-type: application/xml\r\n\r\n${p.content}\r\n`).join('') +
      `--${boundary}--\r\n`;
    return { type: `multipart/form-data; boundary=${boundary}`, body };
  }

  it("takes ejabberd's export_piefxis main file with its included host file as one multipart upload, matched by href", async () => {
    const main = readFileSync(HOST_FILE.replace('_localhost.xml', '.xml'), 'utf8');
    const upload = multipart([
      { field: 'file', filename: '20261123-190538.xml', content: main },
      { field: 'include', filename: '20261123-190538_localhost.xml', content: readFileSync(HOST_FILE, 'utf8') },
    ]);
    const res = await put('/v1/hosts/localhost/import?createAccount=true', '/v1/hosts/{host}/import', upload.type, upload.body);
    expect(res.statusCode).toBe(200);
    const users = res.json().users as { user: string; error?: string }[];
    expect(users.map((u) => u.error ?? u.user)).toEqual(['alice@localhost', 'bob@localhost', 'carol@localhost']);

    const missing = multipart([{ field: 'file', filename: 'main.xml', content: main }]);
    const refused = await put('/v1/hosts/localhost/import', '/v1/hosts/{host}/import', missing.type, missing.body);
    expect(refused.statusCode).toBe(422);
    expect(JSON.stringify(refused.json())).toMatch(/xi:include target does not exist/);

    const escaping = multipart([
      { field: 'file', filename: 'main.xml', content: main },
      // busboy keeps only the base name of a path; a name that could stand for the main document is refused.
      { field: 'include', filename: '.main.xml', content: '<x/>' },
    ]);
    expect((await put('/v1/hosts/localhost/import', '/v1/hosts/{host}/import', escaping.type, escaping.body)).statusCode).toBe(400);
    // Nothing of the uploads is left in the spool.
    expect(readdirSync(join(dir, 'spool'))).toEqual([]);
  });

  it('accepts the web migrator’s application/xpie+xml', async () => {
    const doc = accountDocument({ host: 'localhost', user: 'dora', password: 'pw' });
    const res = await put('/v1/users/dora@localhost/import?createAccount=true', '/v1/users/{jid}/import', 'application/xpie+xml', doc);
    expect(res.statusCode).toBe(200);
    expect(res.json().user).toBe('dora@localhost');
  });

  it('an import into another JID lists the contacts to ask; keepSubscriptions=true keeps the subscriptions', async () => {
    const doc = accountDocument({ host: 'example.net', user: 'alice', password: 'pw' });
    const renamed = await put('/v1/users/eve@localhost/import?createAccount=true', '/v1/users/{jid}/import', 'application/xml', doc);
    expect(renamed.statusCode).toBe(200);
    expect(renamed.json().contactsToAsk).toEqual(['bob@example.net', 'carol@example.org', 'dave@example.com', 'romeo@montague.example']);
    const kept = await put('/v1/users/eve@localhost/import?keepSubscriptions=true', '/v1/users/{jid}/import', 'application/xml', doc);
    expect(kept.statusCode).toBe(200);
    expect(kept.json().contactsToAsk).toBeUndefined();
    expect((await put('/v1/users/eve@localhost/import?keepSubscriptions=maybe', '/v1/users/{jid}/import', 'application/xml', doc)).statusCode).toBe(400);
  });
});
