/**
 * An uploaded or pulled document applied to one account from a spooled copy: the whole document
 * is on local disk before the storage transaction opens (a slow client holds no database lock),
 * and a transient storage failure is retried by reading the copy again.
 */
import { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config/config.js';
import type { ImportRun } from '../core/import-pipeline.js';
import { importReaderOptions } from '../core/import-options.js';
import type { StorageBackend, UserRef } from '../storage/backend.js';
import { DEFAULT_RETRY_POLICY, withRetries } from '../storage/retry.js';
import { importUserDocument, type UserImportOptions, type UserImportReport } from '../transfer/account-transfer.js';
import { readDocument } from '../xep0227/reader.js';
import { spoolUpload } from '../core/spool.js';

/** Copies `source` to the spool, applies it with bounded retries, and removes the copy; bytes and records are counted once. */
export async function importThroughSpool(
  services: { readonly config: Config; readonly storage: StorageBackend },
  run: ImportRun,
  request: FastifyRequest,
  source: Readable,
  spoolKind: 'user' | 'pull',
  ref: UserRef,
  options: UserImportOptions,
): Promise<UserImportReport> {
  const { config, storage } = services;
  const received = Readable.from(run.countBytes(source), { objectMode: false });
  const spool = await spoolUpload(received, config.dataDir, spoolKind, config.files.mode);
  const readerOptions = importReaderOptions(config.limits, options.include, { from: 'upload' });
  try {
    return await withRetries(
      (attempt) => {
        const events = readDocument(spool.open(), readerOptions);
        return importUserDocument(storage, ref, attempt === 1 ? run.countRecords(events) : events, options);
      },
      DEFAULT_RETRY_POLICY,
      (err, attempt, delayMs) =>
        request.log.warn({ jid: `${ref.user}@${ref.host}`, attempt, delayMs, err: (err as Error).message }, 'import failed for a transient reason; retrying'),
      options.signal,
    );
  } finally {
    await spool.remove();
  }
}

/** An import report's figures for the audit log: records per kind, skipped items, whether the account was created. */
export function reportCounts(report: { readonly counts: object; readonly skipped: readonly unknown[]; readonly created: boolean }): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [kind, n] of Object.entries(report.counts)) if (typeof n === 'number') counts[kind] = n;
  counts.skipped = report.skipped.length;
  if (report.created) counts.created = 1;
  return counts;
}
