/**
 * The options every face parses the same way: the import mode, and the reader's limits for a
 * document to import.
 */
import type { LimitsConfig } from '../config/config.js';
import type { DataKind } from '../records/model.js';
import type { ImportMode } from '../storage/backend.js';
import { TransferError } from '../transfer/account-transfer.js';
import type { ReaderOptions } from '../xep0227/reader.js';

/** `raw` as an import mode, `fallback` when it is absent; anything else is a `bad-option`. */
export function importMode(raw: unknown, fallback: ImportMode): ImportMode {
  if (raw === undefined) return fallback;
  if (raw === 'replace' || raw === 'merge') return raw;
  throw new TransferError('bad-option', 'mode must be replace or merge');
}

export interface DocumentSource {
  /**
   * `upload`: received over the network, so bounded by `limits.maxUploadBytes`; `file`: a
   * local file or standard input, as large as it is.
   */
  readonly from: 'upload' | 'file';
  /** Root elements accepted; the reader's default (`<server-data>`) when absent. */
  readonly roots?: ReaderOptions['roots'];
  /** XInclude allowed, and only inside this directory (ejabberd's per-host files). */
  readonly includeDir?: string;
}

/** The reader's options for a document to import: the configured limits, and credentials read only when imported. */
export function importReaderOptions(limits: LimitsConfig, kinds: ReadonlySet<DataKind>, source: DocumentSource): ReaderOptions {
  return {
    maxDepth: limits.maxDepth,
    maxElementBytes: limits.maxElementBytes,
    maxElementNodes: limits.maxElementNodes,
    ...(source.from === 'upload' ? { maxDocumentBytes: limits.maxUploadBytes } : {}),
    ...(source.roots ? { roots: source.roots } : {}),
    // Credentials left out are never parsed.
    credentials: kinds.has('credentials'),
    ...(source.includeDir !== undefined ? { allowXInclude: true, baseDir: source.includeDir } : {}),
  };
}
