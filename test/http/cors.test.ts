/**
 * CORS for configured origins on the real app: a preflight from a configured origin is answered
 * before any token is asked for, one from another origin is refused, and answers (errors too)
 * expose the headers a dashboard reads.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { buildApp } from '../../src/http/server.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import { openStorage } from '../../src/storage/open.js';

const TOKEN = 'cors-operator-token';
const PANEL = 'https://panel.example.org';

async function appWith(dir: string, origins: string[]): Promise<ReturnType<typeof buildApp>> {
  const config = loadConfig({
    env: {
      XPORTA_DATA_DIR: dir,
      XPORTA_LOG_LEVEL: 'silent',
      XPORTA_CORS__ORIGINS: JSON.stringify(origins),
      XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'all', sha256: sha256Hex(TOKEN) }]),
    },
    cwd: dir,
  });
  const app = buildApp({ config, storage: await openStorage(config), logger: false });
  await app.ready();
  return app;
}

describe('CORS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-cors-'));
  let app: ReturnType<typeof buildApp>;
  let bare: ReturnType<typeof buildApp>;

  beforeAll(async () => {
    app = await appWith(dir, [PANEL, 'http://localhost:3000']);
    bare = await appWith(mkdtempSync(join(dir, 'bare-')), []);
  });
  afterAll(async () => {
    await app.close();
    await bare.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const preflight = (origin: string, url = '/v1/users/alice%40localhost/export') => ({
    method: 'OPTIONS' as const,
    url,
    headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization, range' },
  });

  it('answers a preflight from a configured origin without a token', async () => {
    const res = await app.inject(preflight(PANEL));
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe(PANEL);
    expect(String(res.headers['access-control-allow-methods'])).toContain('PUT');
    expect(String(res.headers['access-control-allow-headers']).toLowerCase()).toContain('authorization');
    expect(String(res.headers['access-control-allow-headers']).toLowerCase()).toContain('range');
    expect(res.headers['access-control-max-age']).toBe('600');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    // Paths of every kind, including import uploads and the download endpoints.
    expect((await app.inject(preflight('http://localhost:3000', '/v1/exports/abc'))).statusCode).toBe(204);
  });

  it('refuses a preflight from another origin, with no allow-origin header', async () => {
    const res = await app.inject(preflight('https://evil.example'));
    expect(res.statusCode).toBe(403);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    // A prefix or a different scheme is another origin.
    expect((await app.inject(preflight('http://panel.example.org'))).statusCode).toBe(403);
    expect((await app.inject(preflight(`${PANEL}.evil.example`))).statusCode).toBe(403);
  });

  it('refuses every preflight when no origin is configured', async () => {
    const res = await bare.inject(preflight(PANEL));
    expect(res.statusCode).toBe(403);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('exposes the headers a dashboard reads on answers and on errors', async () => {
    const ok = await app.inject({ method: 'GET', url: '/metrics', headers: { origin: PANEL, authorization: `Bearer ${TOKEN}` } });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe(PANEL);
    const exposed = String(ok.headers['access-control-expose-headers']).toLowerCase();
    for (const name of ['content-disposition', 'location', 'retry-after', 'etag', 'content-range', 'x-request-id']) expect(exposed).toContain(name);
    expect(String(ok.headers.vary)).toContain('Origin');

    const refused = await app.inject({ method: 'GET', url: '/v1/users/alice%40localhost/export', headers: { origin: PANEL } });
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['access-control-allow-origin']).toBe(PANEL);

    const other = await app.inject({ method: 'GET', url: '/metrics', headers: { origin: 'https://evil.example', authorization: `Bearer ${TOKEN}` } });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('a plain OPTIONS (not a preflight) still needs a route and a token', async () => {
    expect((await bare.inject({ method: 'OPTIONS', url: '/v1/users/alice%40localhost/export' })).statusCode).toBe(404);
  });

  it('rejects an origin with a path in the configuration', () => {
    expect(() => loadConfig({ env: { XPORTA_CORS__ORIGINS: JSON.stringify(['https://panel.example.org/']) }, cwd: dir })).toThrow(ConfigError);
  });
});
