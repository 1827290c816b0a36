/**
 * What one user's import did, as it goes: records applied per kind, records skipped with their
 * reason, duplicates and records of kinds not selected (each summed per kind), kinds the backend
 * cannot store, and warnings; and the {@link ApplyReport} made of them. Every backend's import
 * keeps one, so that all reports read the same.
 */
import type { ApplyOptions, ApplyReport, SkippedItem } from '../backend.js';
import type { DataKind } from '../../records/model.js';

export class ImportTally {
  /** Applied records per kind, keys in the order their kinds were first counted. */
  private readonly counts: Partial<Record<DataKind, number>> = {};
  /** Records skipped one by one, in the order they were met; conversions may push to it directly. */
  readonly skipped: SkippedItem[] = [];
  /** Notes for the operator, in the order they were made. */
  readonly warnings: string[] = [];
  private readonly unsupported = new Set<DataKind>();
  private readonly duplicates = new Map<DataKind, number>();
  private readonly notIncluded = new Map<DataKind, number>();

  /** `n` more records of `kind` applied; a negative `n` takes back ones counted too early. */
  count(kind: DataKind, n = 1): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + n;
  }

  /** One record not applied, and why; `detail` names it (never a secret). */
  skip(kind: DataKind, reason: string, detail?: string): void {
    this.skipped.push({ kind, reason, ...(detail !== undefined ? { detail } : {}) });
  }

  /** `n` records of `kind` that storage already held (or the document had earlier); 0 notes nothing. */
  noteDuplicates(kind: DataKind, n: number): void {
    if (n > 0) this.duplicates.set(kind, (this.duplicates.get(kind) ?? 0) + n);
  }

  /** A record of a kind the import was not asked to apply. */
  noteNotIncluded(kind: DataKind): void {
    this.notIncluded.set(kind, (this.notIncluded.get(kind) ?? 0) + 1);
  }

  /** The document has `kind`, which this backend has nowhere to store. */
  noteUnsupported(kind: DataKind): void {
    this.unsupported.add(kind);
  }

  /**
   * The report: the skipped records one by one, then one line per kind for its duplicates
   * (kinds in the order first noted), then one per kind not included.
   */
  report(user: string, options: Pick<ApplyOptions, 'mode' | 'dryRun'>, created: boolean): ApplyReport {
    const skipped = [...this.skipped];
    for (const [kind, n] of this.duplicates) skipped.push({ kind, reason: 'already stored', detail: `${n} record(s)` });
    for (const [kind, n] of this.notIncluded) skipped.push({ kind, reason: 'kind not included', detail: `${n} record(s)` });
    return {
      user,
      mode: options.mode,
      dryRun: options.dryRun,
      created,
      counts: this.counts,
      skipped,
      unsupported: [...this.unsupported],
      warnings: this.warnings,
    };
  }
}
