/**
 * Export workers (src/core/export-workers.ts) as a test starts them: running the worker from
 * its TypeScript source through ts-worker-loader.mjs, since tests run without a build.
 */
import type { Config } from '../../src/config/config.js';
import { ExportWorkers, exportWorkersFor } from '../../src/core/export-workers.js';

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
