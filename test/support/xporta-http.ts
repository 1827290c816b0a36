/**
 * xporta's HTTP app in this process, serving a given store over a real loopback socket, with one
 * operator token: what a live test needs to send a document as an operator would.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { buildApp } from '../../src/http/server.js';
import { openStorage } from '../../src/storage/open.js';

export const HTTP_OPERATOR_TOKEN = 'live-http-operator-token';

/** Runs `fn` with the base URL of an app over `storage` and `hosts` (config shapes as in config.example.json); closes it after. */
export async function withXportaHttp<T>(storage: object, hosts: object, fn: (base: string, authorization: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'xporta-live-http-'));
  const config = loadConfig({
    env: {
      XPORTA_DATA_DIR: dir,
      XPORTA_LOG_LEVEL: 'silent',
      XPORTA_HOSTS: JSON.stringify(hosts),
      XPORTA_STORAGE: JSON.stringify(storage),
      XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'ops', sha256: createHash('sha256').update(HTTP_OPERATOR_TOKEN).digest('hex'), scopes: ['export', 'import', 'admin'] }]),
    },
    cwd: dir,
  });
  const app = buildApp({ config, storage: await openStorage(config), logger: false });
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
    return await fn(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, `Bearer ${HTTP_OPERATOR_TOKEN}`);
  } finally {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** PUT of an XML body; the parsed JSON answer, after checking the status is 200. */
export async function putXml(url: string, authorization: string, body: Buffer | string): Promise<unknown> {
  const res = await fetch(url, { method: 'PUT', headers: { authorization, 'content-type': 'application/xml' }, body });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`PUT ${url}: ${res.status} ${text}`);
  return JSON.parse(text) as unknown;
}
