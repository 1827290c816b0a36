/**
 * Pulling an account from another XMPP server over the client protocol, as every face does it
 * (HTTP, CLI, the component's command, the web): the process-wide limit on pulls at once
 * (`xmppClient.maxConcurrentPulls`), the limit on one pull's archive
 * (`xmppClient.maxArchiveMessages`), and the import of a pulled account through the one import
 * pipeline ({@link importAccount}). Faces reach the client-protocol reader only through here.
 *
 * The password is an argument of these functions and nothing else: it goes to the remote
 * server's SASL exchange and is neither kept, logged, put in a report nor in a job.
 */
import { Readable } from 'node:stream';
import type { Config } from '../config/config.js';
import type { DataKind, DocumentEvent } from '../records/model.js';
import { pullAccount, pullSettings, UNREADABLE_KINDS, type PullNotes, type PullOptions } from '../storage/xmpp-client/index.js';
import { importUserDocument, refOf, type UserImportOptions, type UserImportReport } from '../transfer/account-transfer.js';
import type { Principal } from './auth/authenticator.js';
import type { ImportSource } from './context.js';
import { BusyError, PullLimitError } from './errors.js';
import { importReaderOptions } from './import-options.js';
import { importAccount, type ImportServices } from './import-pipeline.js';
import { spoolUpload, type Spool } from './spool.js';
import { readDocument } from '../xep0227/reader.js';
import { writeDocument } from '../xep0227/writer.js';
import type { Lease, Slots } from './locks.js';

export { XmppPullError, UNREADABLE_KINDS, type PullFailure, type PullNotes } from '../storage/xmpp-client/index.js';

/** What a pull needs of the service: the outgoing policy, the client settings, the slots. */
export interface PullServices {
  readonly config: Pick<Config, 'outgoing' | 'xmppClient'>;
  readonly pullSlots: Slots;
}

export interface PullSource {
  /** The remote account's bare JID, normalised. */
  readonly jid: string;
  /** For this session only. */
  readonly password: string;
  readonly include: ReadonlySet<DataKind>;
  readonly signal?: AbortSignal;
}

export interface RemoteAccount {
  /** The remote account as a one-user XEP-0227 event stream, limits applied. */
  readonly events: AsyncIterable<DocumentEvent>;
  /** What the server refused, warnings, archive progress; filled as the events are read. */
  readonly notes: PullNotes;
  /** Gives the pull slot back; idempotent. The events' end gives it back too. */
  release(): void;
}

/** The kinds a pull reads of those asked for: credentials, offline messages and server-specific stores stay behind. */
export function pullableKinds(kinds: ReadonlySet<DataKind>): Set<DataKind> {
  return new Set([...kinds].filter((k) => !UNREADABLE_KINDS.has(k)));
}

/**
 * Takes a pull slot (or throws {@link BusyError} `pull-slots`) and prepares the pull; it
 * connects when the events are first read, so a login failure is thrown by that read.
 */
export function beginPull(services: PullServices, source: PullSource): RemoteAccount {
  const slot = services.pullSlots.tryTake();
  if (!slot) throw new BusyError('pull-slots', `${services.pullSlots.capacity} pulls from other XMPP servers are running (xmppClient.maxConcurrentPulls); try again later`);
  let pull;
  try {
    const options: PullOptions = {
      ...pullSettings(services.config, source.jid),
      jid: source.jid,
      password: source.password,
      include: pullableKinds(source.include),
      ...(source.signal ? { signal: source.signal } : {}),
    };
    pull = pullAccount(options);
  } catch (err) {
    slot.release();
    throw err;
  }
  return {
    events: limited(pull.events, pull.notes, services.config.xmppClient.maxArchiveMessages, slot),
    notes: pull.notes,
    release: () => slot.release(),
  };
}

/**
 * {@link beginPull}, then signs in: connection, TLS and login failures are thrown here, before
 * anything is answered or written. The events then start with the remote host again.
 */
export async function openPull(services: PullServices, source: PullSource): Promise<RemoteAccount> {
  const pull = beginPull(services, source);
  const iterator = pull.events[Symbol.asyncIterator]();
  let first: IteratorResult<DocumentEvent>;
  try {
    first = await iterator.next();
  } catch (err) {
    pull.release();
    throw err;
  }
  async function* resumed(): AsyncGenerator<DocumentEvent> {
    try {
      if (!first.done) yield first.value;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
    } finally {
      // A consumer that stops early closes the connection behind it.
      await iterator.return?.();
    }
  }
  return { events: resumed(), notes: pull.notes, release: pull.release };
}

/** The events, stopped with {@link PullLimitError} once the archive is known to exceed `max`. */
export async function* limitArchive(events: AsyncIterable<DocumentEvent>, notes: Pick<PullNotes, 'archiveRead' | 'archiveTotal'>, max: number): AsyncGenerator<DocumentEvent> {
  for await (const event of events) {
    // The server's count comes with the first page, before its first message is passed on.
    if (event.kind === 'archive' && ((notes.archiveTotal ?? 0) > max || notes.archiveRead > max)) {
      throw new PullLimitError(max, notes.archiveTotal !== undefined && notes.archiveTotal > max ? notes.archiveTotal : undefined);
    }
    yield event;
  }
}

/** {@link limitArchive}, the slot released when the events end however they end. */
async function* limited(events: AsyncIterable<DocumentEvent>, notes: PullNotes, max: number, slot: Lease): AsyncGenerator<DocumentEvent> {
  try {
    yield* limitArchive(events, notes, max);
  } finally {
    slot.release();
  }
}

// ---------------------------------------------------------------------------------------------

/** What a pull-import is told as it runs. */
export interface PullImportProgress {
  /** Records (roster, vCard, PEP items, messages, …) read so far. */
  readonly records: number;
  /** Archived messages read so far. */
  readonly messages: number;
  /** The archive size the remote server announced (RSM count), once it did. */
  readonly archiveTotal?: number;
}

export interface PullImportRequest {
  /** The local account imported into, normalised. */
  readonly jid: string;
  readonly from: Omit<PullSource, 'include' | 'signal'>;
  /** Mode, dry run, kinds (those the protocol cannot read are left out), account creation. */
  readonly options: Omit<UserImportOptions, 'signal'>;
  readonly source: ImportSource;
  readonly principal?: Principal;
  /** How the refusal of a missing account says to create it, in the face's words. */
  readonly createHint?: string;
  readonly signal?: AbortSignal;
  /** Told once the account's lease is held and the remote login succeeded. */
  readonly onStarted?: () => void;
  /** Told after each record read. */
  readonly onProgress?: (progress: PullImportProgress) => void;
}

/** An import report with what the remote server refused. */
export interface PullImportReport extends UserImportReport {
  readonly refused: readonly string[];
  /** The remote account's JID. */
  readonly source: string;
  readonly archiveTotal?: number;
}

/** Besides the pull's and the import's services, where the pulled document is spooled and the limits it is read back with. */
export type PullImportServices = ImportServices & PullServices & { readonly config: Pick<Config, 'dataDir' | 'files' | 'limits'> };

/**
 * Pulls `from` into a spool file, then imports that into `jid` in one transaction: everything or
 * (on any failure, a limit or a cancel included) nothing. The pull runs at the remote server's
 * pace (minutes for a large archive); spooled first, it holds no storage transaction open, so a
 * live server on the same store (SQLite above all) is not locked out meanwhile, and the apply
 * takes as long as a file's. Kinds the protocol cannot read are left out of the import, so that
 * `replace` does not clear the local account's own.
 */
export async function pullImport(services: PullImportServices, request: PullImportRequest): Promise<PullImportReport> {
  const include = pullableKinds(request.options.include);
  const options: UserImportOptions = { ...request.options, include, ...(request.signal ? { signal: request.signal } : {}) };
  return importAccount<PullImportReport>(services, {
      jid: request.jid,
      source: request.source,
      options,
      ...(request.principal ? { principal: request.principal } : {}),
      ...(request.createHint !== undefined ? { createHint: request.createHint } : {}),
    }, {
    apply: async (run) => {
      const { config } = services;
      const pull = await openPull(services, { ...request.from, include, ...(request.signal ? { signal: request.signal } : {}) });
      let spool: Spool;
      try {
        request.onStarted?.();
        spool = await spoolUpload(Readable.from(writeDocument(progressOf(pull, request.onProgress))), config.dataDir, 'pull', config.files.mode);
      } finally {
        pull.release();
      }
      try {
        const events = readDocument(spool.open(), importReaderOptions(config.limits, include, { from: 'file' }));
        const report = await importUserDocument(services.storage, refOf(request.jid), run.countRecords(events), options);
        return {
          ...report,
          warnings: [...report.warnings, ...pull.notes.warnings],
          refused: [...pull.notes.refused],
          source: request.from.jid,
          ...(pull.notes.archiveTotal !== undefined ? { archiveTotal: pull.notes.archiveTotal } : {}),
        };
      } finally {
        await spool.remove();
      }
    },
  });
}

async function* progressOf(pull: RemoteAccount, onProgress: PullImportRequest['onProgress']): AsyncGenerator<DocumentEvent> {
  let records = 0;
  for await (const event of pull.events) {
    if (onProgress && event.kind !== 'host' && event.kind !== 'host-end' && event.kind !== 'user' && event.kind !== 'user-end') {
      records++;
      const { archiveRead, archiveTotal } = pull.notes;
      onProgress({ records, messages: archiveRead, ...(archiveTotal !== undefined ? { archiveTotal } : {}) });
    }
    yield event;
  }
}

