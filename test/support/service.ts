/**
 * A service (real Fastify app, real storage) for fault tests, and helpers to import and export
 * through it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { loadConfig } from '../../src/config/config.js';
import { buildApp } from '../../src/http/server.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import { openStorage } from '../../src/storage/open.js';

export const TOKEN = 'operator-fault-secret';

export interface TestService {
  readonly app: FastifyInstance;
  readonly dir: string;
  close(): Promise<void>;
}

export async function startService(
  storage: Record<string, unknown> | undefined,
  env: Record<string, string> = {},
  logger: FastifyServerOptions['logger'] = false,
  /** Registers more on the app before it is ready (e.g. the web page's plugin). */
  beforeReady?: (app: ReturnType<typeof buildApp>) => void,
): Promise<TestService> {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-faults-'));
  const config = loadConfig({
    env: {
      XPORTA_DATA_DIR: dir,
      XPORTA_LOG_LEVEL: 'silent',
      XPORTA_HOSTS: JSON.stringify({ localhost: { passwordHash: 'SHA-1' } }),
      XPORTA_AUTH__USER_TOKEN_SECRET: 'u'.repeat(40),
      XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'all', sha256: sha256Hex(TOKEN), scopes: ['export', 'import', 'admin'], hosts: ['*'] }]),
      ...(storage ? { XPORTA_STORAGE: JSON.stringify(storage) } : {}),
      ...env,
    },
    cwd: dir,
  });
  const app = buildApp({ config, storage: await openStorage(config), logger });
  beforeReady?.(app);
  await app.ready();
  return {
    app,
    dir,
    close: async () => {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, unknown>;
  readonly body: string;
}

export async function importDoc(app: FastifyInstance, jid: string, doc: string, query = 'createAccount=true'): Promise<Answer> {
  const res = await app.inject({
    method: 'PUT',
    url: `/v1/users/${encodeURIComponent(jid)}/import?${query}`,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/xml' },
    payload: doc,
  });
  return { status: res.statusCode, headers: res.headers, body: res.body };
}

export async function exportDoc(app: FastifyInstance, jid: string): Promise<Answer> {
  const res = await app.inject({ method: 'GET', url: `/v1/users/${encodeURIComponent(jid)}/export`, headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: res.statusCode, headers: res.headers, body: res.body };
}

/** `<result …>` elements in an export. */
export function archiveCount(doc: string): number {
  return doc.match(/<result /g)?.length ?? 0;
}
