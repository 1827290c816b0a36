/**
 * The service core every face shares, built once per process: configuration, storage, auth,
 * locks and import slots, metrics, audit, jobs, export files, and the capabilities a face
 * registers for the others (the XMPP component's notifier and privileged access). A face sees
 * another only through these interfaces, never by importing it.
 */
import { join } from 'node:path';
import { AuditLog } from './audit.js';
import type { TokenStore } from './auth/token-store.js';
import type { Config } from '../config/config.js';
import { ExportFiles } from './export-files.js';
import type { ExportWorkers } from './export-workers.js';
import type { JobStore } from './job-store.js';
import { AccountLocks, crossProcessLocker, Slots } from './locks.js';
import type { ApplyReport, StorageBackend } from '../storage/backend.js';
import type { XmlElement } from '../records/model.js';
import { Authenticator, FailedAuthLimiter, RequestQuota, type Principal } from './auth/authenticator.js';
import { Metrics } from './metrics.js';

/** Which face an import came through; the metrics' `source` label. */
export type ImportSource = 'upload' | 'url' | 'xmpp' | 'cli' | 'host' | 'move';

/** An import into one account finished; dry runs too, so a command that handed out a check link can show its result. */
export interface ImportFinished {
  readonly jid: string;
  readonly report: ApplyReport;
  /** Who asked for it; undefined for the CLI, which has no principal. */
  readonly principal?: Principal;
  readonly source: ImportSource;
}

/** Tells an account's owner what an import changed (the XMPP component does). */
export interface AccountNotifier {
  /** Returns at once and never throws: an import's answer does not wait for the notice. */
  importFinished(event: ImportFinished): void;
}

/**
 * What the XMPP server lets xporta do in its users' names (XEP-0356), as far as the core needs
 * it; the component registers it while it runs.
 */
export interface PrivilegedAccess {
  /** True while the server grants publishing into `host`'s users' PEP. */
  canPublishPep(host: string): boolean;
  /**
   * Publishes `payload` as item `itemId` of `user`'s PEP `node` with the given node access model,
   * reconfiguring an existing node whose model differs when the server allows it. Throws when
   * the server refuses.
   */
  publishPep(user: string, node: string, itemId: string, payload: XmlElement, accessModel: string): Promise<void>;
}

export interface ServiceContext {
  readonly config: Config;
  readonly storage: StorageBackend;
  readonly auth: Authenticator;
  /** Failed authentications per client address. */
  readonly limiter: FailedAuthLimiter;
  /** Failed authentications per attempted user-token id: apart, so a spray of made-up ids cannot evict address counts. */
  readonly tokenIdLimiter: FailedAuthLimiter;
  readonly quota: RequestQuota;
  /** xporta's token state; absent only where a caller built a context without one. */
  readonly tokens?: TokenStore;
  readonly audit: AuditLog;
  readonly locks: AccountLocks;
  /** Background jobs in xporta's state; absent only where a caller built a context without one. */
  readonly jobs?: JobStore;
  readonly importSlots: Slots;
  /** Pulls from other XMPP servers at once (`xmppClient.maxConcurrentPulls`), whatever face started them. */
  readonly pullSlots: Slots;
  readonly metrics: Metrics;
  /** Downloadable export files under `dataDir/exports`. */
  readonly exportFiles: ExportFiles;
  /** Where streamed exports are written; absent when they run on the service's thread. */
  readonly exportWorkers?: ExportWorkers;
  /** Not readonly: the component registers itself once the context exists; absent when it is disabled. */
  notifier?: AccountNotifier;
  /** Registered by the component, like `notifier`; absent when it is disabled. */
  privileged?: PrivilegedAccess;
}

export interface ContextParts {
  readonly tokens?: TokenStore;
  readonly jobs?: JobStore;
  readonly audit?: AuditLog;
  readonly exportWorkers?: ExportWorkers;
}

export function createContext(config: Config, storage: StorageBackend, parts: ContextParts = {}): ServiceContext {
  const metrics = new Metrics();
  return {
    config,
    storage,
    auth: new Authenticator(config.auth.tokens, config.auth.userTokenSecret, config.auth.userTokenMaxTtlSeconds, {
      ...(parts.tokens ? { store: parts.tokens } : {}),
      previousSecrets: config.auth.previousUserTokenSecrets,
    }),
    limiter: new FailedAuthLimiter(config.auth.failedAuthPerMinute),
    tokenIdLimiter: new FailedAuthLimiter(config.auth.failedAuthPerMinute),
    quota: new RequestQuota(config.auth.requestsPerMinutePerToken),
    ...(parts.tokens ? { tokens: parts.tokens } : {}),
    ...(parts.jobs ? { jobs: parts.jobs } : {}),
    ...(parts.exportWorkers ? { exportWorkers: parts.exportWorkers } : {}),
    audit: parts.audit ?? AuditLog.none(),
    locks: new AccountLocks(crossProcessLocker(config, storage)),
    // Every holder of a slot (user, host and pulled imports) shows in the gauge.
    importSlots: new Slots(config.limits.maxConcurrentImports, (inUse) => metrics.set('xporta_imports_in_progress', inUse)),
    pullSlots: new Slots(config.xmppClient.maxConcurrentPulls, (inUse) => metrics.set('xporta_pulls_in_progress', inUse)),
    metrics,
    exportFiles: new ExportFiles(join(config.dataDir, 'exports'), config.files.mode, config.exports.ttlSeconds),
  };
}
