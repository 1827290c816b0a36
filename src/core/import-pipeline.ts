/**
 * The one way an import runs, whatever face asked for it (an HTTP upload or pull, the CLI, the
 * XMPP component's links, a move, a host import): it takes the account's lease and an import
 * slot, times and counts the import in the metrics, tells the registered notifier, and releases
 * everything on every path. The faces only parse their requests and render the answers.
 */
import type { DocumentEvent } from '../records/model.js';
import { StorageError, type ApplyReport } from '../storage/backend.js';
import type { HostAccountOutcome, HostImportResult } from '../transfer/host-transfer.js';
import { refOf, type UserImportOptions } from '../transfer/account-transfer.js';
import type { Principal } from './auth/authenticator.js';
import type { ImportSource, ServiceContext } from './context.js';
import { countRecords, countStreamedBytes } from './counting.js';
import { BusyError } from './errors.js';
import type { Lease } from './locks.js';
import type { MetricsRecorder, Operation, Outcome } from './metrics-recorder.js';

/** What the pipeline needs of the service; the CLI builds these for its one process. */
export type ImportServices = Pick<ServiceContext, 'storage' | 'locks' | 'importSlots' | 'notifier'> & {
  readonly metrics: MetricsRecorder;
};

export interface AccountImportRequest {
  /** The normalised bare JID imported into. */
  readonly jid: string;
  readonly source: ImportSource;
  readonly options: UserImportOptions;
  readonly principal?: Principal;
  /** How the refusal of a missing account says to create it, in the face's words. */
  readonly createHint?: string;
}

/** Counting helpers for the document an import reads. */
export interface ImportRun {
  /** The document's records, counted into the metrics; count one attempt only. */
  countRecords(events: AsyncIterable<DocumentEvent>): AsyncIterable<DocumentEvent>;
  /** The document's bytes as received, counted into the metrics. */
  countBytes<T extends Uint8Array>(chunks: AsyncIterable<T>): AsyncIterable<T>;
}

export interface ImportSteps<R extends ApplyReport> {
  /** Runs once the lease is held, before the slot and the clock: e.g. accepting an upload's body. */
  readonly accept?: () => Promise<void>;
  /** Reads the document and applies it (with retries, if the face can read it again). */
  readonly apply: (run: ImportRun) => Promise<R>;
}

/** Imports into one account; see the module comment. */
export async function importAccount<R extends ApplyReport>(services: ImportServices, request: AccountImportRequest, steps: ImportSteps<R>): Promise<R> {
  const { jid, options } = request;
  const lease = await services.locks.tryAcquire(jid, 'exclusive');
  if (!lease) throw new BusyError('account', `another operation on ${jid} is running`);
  let slot: Lease | undefined;
  try {
    await steps.accept?.();
    slot = services.importSlots.tryTake();
    if (!slot) throw new BusyError('import-slots', 'too many imports are running; try again later');
    const finished = outcomeCounter(services, request.source, options.dryRun);
    try {
      if (!options.createAccount && !(await services.storage.userExists(refOf(jid)))) {
        throw new StorageError('user-not-found', `no account ${jid} (${request.createHint ?? 'use createAccount=true to create it'})`);
      }
      const report = await steps.apply(importRun(services, options.dryRun));
      finished('ok');
      services.notifier?.importFinished({ jid, report, source: request.source, ...(request.principal ? { principal: request.principal } : {}) });
      return report;
    } catch (err) {
      finished('error');
      throw err;
    }
  } finally {
    slot?.release();
    lease.release();
  }
}

export interface HostImportRequest {
  readonly host: string;
  readonly dryRun: boolean;
  readonly principal?: Principal;
}

/** What a host import's apply pass is given: the per-account lease every other import takes too. */
export interface HostImportGate {
  /** The account's exclusive lease, or undefined while another operation holds it. */
  lockAccount(jid: string): Promise<Lease | undefined>;
  /**
   * Tells the notifier of an account's outcome: for an apply that hands its outcomes to its
   * caller as they are final (importHostDocument's `onOutcome`). Those left in the result are
   * told of by {@link HostImport.run}.
   */
  outcome(outcome: HostAccountOutcome): void;
}

/**
 * A host import holds an import slot from before its upload is read until it ends; each account
 * is applied under its own lease ({@link HostImportGate}), and each account applied is notified.
 */
export class HostImport {
  private constructor(
    private readonly services: ImportServices,
    private readonly slot: Lease,
  ) {}

  /** Takes the slot, or throws {@link BusyError}. */
  static begin(services: ImportServices): HostImport {
    const slot = services.importSlots.tryTake();
    if (!slot) throw new BusyError('import-slots', 'too many imports are running; try again later');
    return new HostImport(services, slot);
  }

  /** Times, counts and notifies one host's apply pass; the slot stays held for the next host. */
  async run(request: HostImportRequest, apply: (gate: HostImportGate) => Promise<HostImportResult>): Promise<HostImportResult> {
    const { metrics, locks } = this.services;
    const timed = metrics.time(request.dryRun ? 'host_dry_run' : 'host_import');
    const finished = (outcome: Outcome): void => {
      timed(outcome);
      metrics.inc('xporta_host_transfers_total', { direction: 'import', dry_run: String(request.dryRun), outcome });
      if (request.dryRun) metrics.inc('xporta_dry_runs_total', { scope: 'host', outcome });
    };
    const notify = (report: HostAccountOutcome): void => {
      if ('mode' in report) this.services.notifier?.importFinished({ jid: report.user, report, source: 'host', ...(request.principal ? { principal: request.principal } : {}) });
    };
    let result: HostImportResult;
    try {
      result = await apply({ lockAccount: (jid) => locks.tryAcquire(jid, 'exclusive'), outcome: notify });
      finished('ok');
    } catch (err) {
      finished('error');
      throw err;
    }
    for (const report of result.users) notify(report);
    return result;
  }

  release(): void {
    this.slot.release();
  }
}

function importRun(services: ImportServices, dryRun: boolean): ImportRun {
  return {
    countRecords: (events) => countRecords(events, services.metrics, dryRun ? 'dry_run' : 'import'),
    countBytes: (chunks) => countStreamedBytes(chunks, services.metrics, 'import'),
  };
}

/** Pulls (from a URL or an XMPP account) are timed apart from documents sent to xporta. */
const OPERATION: Readonly<Record<ImportSource, Operation>> = {
  upload: 'import',
  cli: 'import',
  move: 'import',
  host: 'import',
  url: 'import_from',
  xmpp: 'import_from',
};

/** Records the import's duration and outcome once: dry runs apart from imports that changed storage. */
function outcomeCounter(services: ImportServices, source: ImportSource, dryRun: boolean): (outcome: Outcome) => void {
  const timed = services.metrics.time(dryRun ? 'dry_run' : OPERATION[source]);
  return (outcome) => {
    timed(outcome);
    if (dryRun) services.metrics.inc('xporta_dry_runs_total', { scope: 'user', outcome });
    else services.metrics.inc('xporta_imports_total', { source, outcome });
  };
}
