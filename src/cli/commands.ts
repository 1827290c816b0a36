/**
 * The CLI's data commands: the same transfer code as the HTTP routes, on the configured storage.
 */
import { createReadStream } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { userInfo } from 'node:os';
import { tapAsync } from '../lib/async-iter.js';
import { AuditLog, type AuditEntry } from '../core/audit.js';
import { decompressedByContent, type TransferObserver } from './io.js';
import { parseOperatorTokenSpec, TokenSpecError } from '../core/auth/token-spec.js';
import { STATE_FILE, TokenStore, type StoredOperatorToken } from '../core/auth/token-store.js';
import type { Config, Scope } from '../config/config.js';
import { exportHostDocument } from '../transfer/host-transfer.js';
import { Authenticator } from '../core/auth/authenticator.js';
import type { AccountNotifier } from '../core/context.js';
import { importAccount, type ImportServices } from '../core/import-pipeline.js';
import { importMode, importReaderOptions } from '../core/import-options.js';
import { UNRECORDED, type MetricsRecorder } from '../core/metrics-recorder.js';
import { bareJid, normaliseDomain } from '../lib/jid.js';
import { AccountLocks, crossProcessLocker, Slots, type Lease } from '../core/locks.js';
import { generateToken, sha256Hex } from '../core/auth/operator-token.js';
import { StorageError, type StorageBackend } from '../storage/backend.js';
import { withRetries } from '../storage/retry.js';
import { openStorage } from '../storage/open.js';
import { exportUserDocument, importUserDocument, refOf, selectKinds, type UserImportReport } from '../transfer/account-transfer.js';
import type { DocumentEvent } from '../records/model.js';
import { readDocument } from '../xep0227/reader.js';
import { writeDocument, type InvalidCharsReplaced } from '../xep0227/writer.js';
import { UsageError } from './exit-codes.js';

/**
 * What a CLI transfer is given of the service core beyond its configuration: the service's
 * notifier is not there in a CLI process, and its metrics are nobody's to scrape, so both are
 * the caller's to pass (tests do).
 */
export interface CliServices {
  readonly metrics?: MetricsRecorder;
  readonly notifier?: AccountNotifier;
}

/** The import pipeline's services for one CLI run: the cross-process account locks every process on the storage honours. */
export function cliImportServices(config: Config, storage: StorageBackend, given: CliServices = {}): ImportServices {
  return {
    storage,
    locks: new AccountLocks(crossProcessLocker(config, storage)),
    // One import at a time in one CLI process; other processes are held off by the account locks.
    importSlots: new Slots(1),
    // Counted only when the caller hands a recorder in: nobody scrapes a CLI process.
    metrics: given.metrics ?? UNRECORDED,
    ...(given.notifier ? { notifier: given.notifier } : {}),
  };
}

function userJid(raw: string | undefined): string {
  if (raw === undefined) throw new UsageError('a JID is required, e.g. alice@example.org');
  const jid = bareJid(raw);
  if (!jid.includes('@')) throw new UsageError(`${raw} is not a user JID`);
  return jid;
}

function servedHost(config: Config, host: string): void {
  if (!(host in config.hosts)) throw new UsageError(`host ${host} is not in the configuration (hosts.${host})`);
}

export interface ExportArgs {
  readonly target: string | undefined;
  readonly host?: boolean;
  readonly include?: string;
  readonly exclude?: string;
  /** Told of every record and every byte written (the progress line). */
  readonly observer?: TransferObserver;
}

/** Records and bytes reported to `observer` as they pass. */
function observed(events: AsyncIterable<DocumentEvent>, observer: TransferObserver | undefined): AsyncIterable<DocumentEvent> {
  return observer ? tapAsync(events, (event) => observer.event(event), () => undefined) : events;
}

async function* countedBytes<T extends Uint8Array>(chunks: AsyncIterable<T>, observer: TransferObserver | undefined): AsyncGenerator<T> {
  for await (const chunk of chunks) {
    observer?.bytes(chunk.length);
    yield chunk;
  }
}

/** The events, then the lease released however the reading ends. */
async function* releasedAtEnd<T>(events: AsyncIterable<T>, lease: Lease): AsyncGenerator<T> {
  try {
    yield* events;
  } finally {
    lease.release();
  }
}

/** Writes the document to `out` (stdout), streaming. */
export async function runExport(config: Config, args: ExportArgs, out: Writable): Promise<void> {
  const kinds = selectKinds(args.include, args.exclude);
  const storage = await openStorage(config);
  try {
    let events;
    let subject: { host: string } | { account: string };
    if (args.host) {
      if (args.target === undefined) throw new UsageError('a host is required');
      const host = normaliseDomain(args.target);
      servedHost(config, host);
      subject = { host };
      // Each account under the shared lease a user export takes, as the service's host export does.
      const locks = new AccountLocks(crossProcessLocker(config, storage));
      events = exportHostDocument(storage, host, kinds, { lockAccount: (jid) => locks.acquire(jid, 'shared') });
    } else {
      const jid = userJid(args.target);
      const ref = refOf(jid);
      servedHost(config, ref.host);
      subject = { account: jid };
      // Shared with the service's exports, refused while anyone imports into the account.
      const lease = await new AccountLocks(crossProcessLocker(config, storage)).tryAcquire(jid, 'shared');
      if (!lease) throw new StorageError('conflict', `an import into ${jid} is running`);
      events = releasedAtEnd(exportUserDocument(storage, ref, kinds), lease);
    }
    const onInvalidChars = (r: InvalidCharsReplaced): void => {
      const where = [r.user, r.kind, r.detail].filter((x) => x !== undefined).join(', ');
      process.stderr.write(`xporta: warning: U+${r.codePoint.toString(16).toUpperCase().padStart(4, '0')} cannot be carried by XML 1.0; exported as U+FFFD (${where})\n`);
    };
    const action = args.host ? 'host-export' : 'export';
    try {
      await pipeline(Readable.from(countedBytes(writeDocument(observed(events, args.observer), { onInvalidChars }), args.observer)), out, { end: false });
    } catch (err) {
      auditFailed(config, { action, ...subject, kinds: [...kinds] }, err);
      throw err;
    }
    auditCli(config, { action, ...subject, kinds: [...kinds], outcome: 'ok' });
  } finally {
    await storage.close();
  }
}

export interface ImportArgs {
  readonly jid: string | undefined;
  /** A file path, or `-` for standard input. */
  readonly file: string | undefined;
  readonly mode?: string;
  readonly dryRun?: boolean;
  readonly createAccount?: boolean;
  /** On an import into another JID, keep subscriptions the contacts gave the document's JID. */
  readonly keepSubscriptions?: boolean;
  readonly include?: string;
  readonly exclude?: string;
  /** Told of every record and every byte read (the progress line). */
  readonly observer?: TransferObserver;
}

export async function runImport(config: Config, args: ImportArgs, stdin: Readable, given: CliServices = {}): Promise<UserImportReport> {
  const jid = userJid(args.jid);
  const ref = refOf(jid);
  servedHost(config, ref.host);
  if (args.file === undefined) throw new UsageError('a file is required (or - for standard input)');
  const mode = importMode(args.mode, 'replace');
  const kinds = selectKinds(args.include, args.exclude);
  const file = args.file;
  const fromFile = file !== '-';
  // gzip is recognised by content, on standard input too.
  const open = async (): Promise<Readable> =>
    Readable.from(countedBytes(await decompressedByContent(fromFile ? createReadStream(file) : stdin), args.observer), { objectMode: false });
  // XInclude (ejabberd's per-host files) only for files, and only inside their directory.
  const readerOptions = importReaderOptions(config.limits, kinds, { from: 'file', roots: ['server-data', 'host'], ...(fromFile ? { includeDir: dirname(resolve(file)) } : {}) });
  // A missing file fails here, before storage opens; a retry after a transient failure reads the file again.
  let firstSource: Readable | undefined = await open();
  const storage = await openStorage(config);
  const options = { mode, dryRun: args.dryRun === true, include: kinds, createAccount: args.createAccount === true, keepSubscriptions: args.keepSubscriptions === true };
  const audited = { action: 'import' as const, account: jid, kinds: [...kinds], mode, dryRun: options.dryRun };
  try {
    // The lease the service and other CLIs take is held for the whole import, retries included.
    const report = await importAccount(cliImportServices(config, storage, given), { jid, source: 'cli', options, createHint: 'use --create-account to create it' }, {
      apply: (run) => {
        const attempt = async (n: number): Promise<UserImportReport> => {
          const source = firstSource ?? (await open());
          firstSource = undefined;
          const events = observed(readDocument(source, readerOptions), args.observer);
          return importUserDocument(storage, ref, n === 1 ? run.countRecords(events) : events, options);
        };
        // A file can be read again after a transient storage failure; standard input cannot.
        return fromFile ? withRetries(attempt) : attempt(1);
      },
    });
    auditImported(config, audited, report);
    return report;
  } catch (err) {
    auditFailed(config, audited, err);
    throw err;
  } finally {
    firstSource?.destroy();
    await storage.close();
  }
}

export interface TokenArgs {
  readonly jid: string | undefined;
  readonly scopes?: string;
  readonly ttlSeconds?: string;
}

function openTokenStore(config: Config): TokenStore {
  return TokenStore.open(join(config.dataDir, STATE_FILE), config.files.mode);
}

type AuditedAction = Omit<AuditEntry, 'actor' | 'outcome' | 'counts' | 'reason'>;

/** The audit line of a CLI import that applied (or, dry, would have): its counts per kind and skipped records. */
export function auditImported(config: Config, audited: AuditedAction, report: UserImportReport): void {
  const counts: Record<string, number> = { skipped: report.skipped.length, ...(report.created ? { created: 1 } : {}) };
  for (const [kind, n] of Object.entries(report.counts)) if (typeof n === 'number') counts[kind] = n;
  auditCli(config, { ...audited, outcome: 'ok', counts });
}

/** The audit line of a CLI action that failed, with the reason. */
export function auditFailed(config: Config, audited: AuditedAction, err: unknown): void {
  auditCli(config, { ...audited, outcome: 'failed', reason: err instanceof Error ? err.message : String(err) });
}

/** One audit line for a CLI action, as the service writes for the API's; to stderr when the log is standard output (stdout carries the CLI's own output). */
export function auditCli(config: Config, entry: Omit<AuditEntry, 'actor'>): void {
  const audit = config.audit.file === '-' ? AuditLog.toStream(process.stderr) : AuditLog.open(config);
  let user: string | undefined;
  try {
    user = userInfo().username;
  } catch {
    user = undefined;
  }
  audit.record({ ...entry, actor: { kind: 'cli', ...(user !== undefined ? { user } : {}) } });
  audit.flush();
}

/** A user token signed with the configured key, so the running service accepts it; recorded for listing and revocation. */
export function runUserToken(config: Config, args: TokenArgs): { token: string; expiresAt: string; jti: string } {
  if (config.auth.userTokenSecret === undefined) {
    throw new UsageError('auth.userTokenSecret (or XPORTA_AUTH__USER_TOKEN_SECRET) must be configured for the service to accept CLI-made tokens');
  }
  const jid = userJid(args.jid);
  servedHost(config, refOf(jid).host);
  const scopes = (args.scopes ?? 'export').split(',').map((s) => s.trim());
  for (const s of scopes) if (s !== 'export' && s !== 'import') throw new UsageError(`--scopes takes export and/or import, not ${s}`);
  const ttlSeconds = Number(args.ttlSeconds ?? '900');
  if (!Number.isInteger(ttlSeconds)) throw new UsageError('--ttl must be an integer number of seconds');
  const store = openTokenStore(config);
  try {
    const auth = new Authenticator([], config.auth.userTokenSecret, config.auth.userTokenMaxTtlSeconds, { store });
    // A lifetime over the maximum is refused by the core (AuthError `invalid-request`: exit 64).
    const minted = auth.mintUserToken({ jid, scopes: scopes as Scope[], ttlSeconds });
    auditCli(config, { action: 'user-token-mint', outcome: 'ok', account: jid, target: minted.claims.jti });
    return { token: minted.token, expiresAt: new Date(minted.claims.exp * 1000).toISOString(), jti: minted.claims.jti };
  } finally {
    store.close();
  }
}

export interface OperatorTokenArgs {
  readonly name?: string;
  readonly scopes?: string;
  readonly hosts?: string;
}

function operatorSpec(config: Config, args: OperatorTokenArgs): ReturnType<typeof parseOperatorTokenSpec> {
  try {
    return parseOperatorTokenSpec(
      { ...(args.name !== undefined ? { name: args.name } : {}), ...(args.scopes !== undefined ? { scopes: args.scopes } : {}), ...(args.hosts !== undefined ? { hosts: args.hosts } : {}) },
      Object.keys(config.hosts),
    );
  } catch (err) {
    if (err instanceof TokenSpecError) throw new UsageError(err.message);
    throw err;
  }
}

/** A new operator token in the token store: the running service accepts it at once. */
export function runOperatorToken(config: Config, args: OperatorTokenArgs): { token: string; record: StoredOperatorToken } {
  const spec = operatorSpec(config, args);
  const store = openTokenStore(config);
  try {
    const created = store.createOperatorToken(spec);
    auditCli(config, { action: 'operator-token-create', outcome: 'ok', target: created.record.id });
    return created;
  } finally {
    store.close();
  }
}

/** A new operator token and the config-file entry that accepts it (for deployments that keep tokens in the config). */
export function runOperatorTokenEntry(config: Config, args: OperatorTokenArgs): { token: string; entry: object } {
  const spec = operatorSpec(config, args);
  const token = generateToken();
  return { token, entry: { name: spec.name, sha256: sha256Hex(token), scopes: spec.scopes, hosts: spec.hosts } };
}

export function runTokenList(config: Config): { tokens: object[] } {
  const store = openTokenStore(config);
  try {
    const fromConfig = config.auth.tokens.map((t) => ({ name: t.name, scopes: t.scopes, hosts: t.hosts, source: 'config' }));
    return { tokens: [...fromConfig, ...store.listOperatorTokens().map((t) => ({ ...t, source: 'store' }))] };
  } finally {
    store.close();
  }
}

export function runTokenRevoke(config: Config, id: string | undefined): StoredOperatorToken {
  if (id === undefined) throw new UsageError('a token id is required (see xporta token list)');
  const store = openTokenStore(config);
  try {
    const existing = store.getOperatorToken(id);
    if (!existing) throw new UsageError(`no token ${id} in the token store (tokens from the config file are removed there)`);
    store.revokeOperatorToken(id);
    auditCli(config, { action: 'operator-token-revoke', outcome: 'ok', target: id });
    return store.getOperatorToken(id) ?? existing;
  } finally {
    store.close();
  }
}

export function runTokenRotate(config: Config, id: string | undefined): { token: string; record: StoredOperatorToken } {
  if (id === undefined) throw new UsageError('a token id is required (see xporta token list)');
  const store = openTokenStore(config);
  try {
    const rotated = store.rotateOperatorToken(id);
    if (!rotated) throw new UsageError(`no active token ${id} in the token store`);
    auditCli(config, { action: 'operator-token-rotate', outcome: 'ok', target: id });
    return rotated;
  } finally {
    store.close();
  }
}
