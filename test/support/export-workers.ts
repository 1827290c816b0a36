/**
 * Export workers (src/core/export-workers.ts) as a test starts them: running the worker from
 * its TypeScript source through ts-worker-loader.mjs, since tests run without a build.
 */
import type { Config } from '../../src/config/config.js';
import { exportWorkersFor, type ExportWorkers } from '../../src/core/export-workers.js';

export const EXPORT_WORKER_ENTRY = {
  url: new URL('../../src/core/export-worker.ts', import.meta.url),
  execArgv: ['--import', new URL('./ts-worker-loader.mjs', import.meta.url).href],
} as const;

/** The workers `xporta serve` would start for `config`, with `size` of them (default 2). */
export function testExportWorkers(config: Pick<Config, 'exports' | 'storage' | 'hosts'>, size = 2): ExportWorkers {
  const workers = exportWorkersFor({ ...config, exports: { ...config.exports, workers: size } }, EXPORT_WORKER_ENTRY);
  if (!workers) throw new Error(`no export workers for ${config.storage.type}`);
  return workers;
}
