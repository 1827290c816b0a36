/**
 * Export workers (src/core/export-workers.ts) as a test starts them: running the worker from
 * its TypeScript source through ts-worker-loader.mjs, since tests run without a build.
 */
import { Readable } from 'node:stream';
import type { Config } from '../../src/config/config.js';
import { ExportWorkers, exportWorkersFor } from '../../src/core/export-workers.js';
import type { StorageBackend } from '../../src/storage/backend.js';
import { importUserDocument, selectKinds } from '../../src/transfer/account-transfer.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { accountDocument } from './documents.js';

export const EXPORT_WORKER_ENTRY = {
  url: new URL('../../src/core/export-worker.ts', import.meta.url),
  execArgv: ['--import', new URL('./ts-worker-loader.mjs', import.meta.url).href],
} as const;

/**
 * `size` export workers (default 2) for `config`'s storage. `as: 'serve'` gives those `xporta
 * serve` starts, which leave the first export at a time to the service's thread; by default
 * every export goes to a worker, so that a test of the workers exercises them.
 */
export function testExportWorkers(config: Pick<Config, 'exports' | 'storage' | 'hosts'>, size = 2, as: 'serve' | 'workers-only' = 'workers-only'): ExportWorkers {
  if (as === 'workers-only') return new ExportWorkers({ size, data: { storage: config.storage, hosts: config.hosts }, entry: EXPORT_WORKER_ENTRY });
  const workers = exportWorkersFor({ ...config, exports: { ...config.exports, workers: size } }, EXPORT_WORKER_ENTRY);
  if (!workers) throw new Error(`no export workers for ${config.storage.type}`);
  return workers;
}

/** Every byte of `stream`. */
export async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** alice@localhost's document with `archiveCount` messages and `fn` as her vCard's name, so two versions tell apart. */
export function aliceDocument(fn: string, archiveCount: number): string {
  return accountDocument({ host: 'localhost', user: 'alice', password: 'pw', archiveCount }).replace('<FN>Alice Example</FN>', `<FN>${fn}</FN>`);
}

/** Replaces alice@localhost with `text`, creating her when needed. */
export async function applyAlice(storage: StorageBackend, text: string): Promise<void> {
  await importUserDocument(storage, { host: 'localhost', user: 'alice' }, readDocument(Readable.from([Buffer.from(text)])), { mode: 'replace', dryRun: false, include: selectKinds(), createAccount: true });
}
