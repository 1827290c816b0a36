/**
 * What a validated configuration holds: every section's type, and the error a bad one raises.
 */
import type { PrivateFileMode } from '../lib/private-files.js';
import type { OutgoingConfig } from '../lib/net/outgoing.js';

export type { OutgoingConfig };

export type Scope = 'export' | 'import' | 'admin';
export const SCOPES: readonly Scope[] = ['export', 'import', 'admin'];

export type PasswordHash = 'SHA-1' | 'SHA-256' | 'plain';

export interface OperatorToken {
  readonly name: string;
  /** Lower-case hex SHA-256 of the bearer token; the token itself is never stored. */
  readonly sha256: string;
  readonly scopes: readonly Scope[];
  /** Hosts this token may act on; `*` for all. */
  readonly hosts: readonly string[];
}

/**
 * Prosody's generation, for storage that cannot tell it yet (see README, "Server versions");
 * absent: detected from the storage, else 0.12.
 */
export interface ProsodyVersionSetting {
  readonly serverVersion?: '0.12' | '13';
}

export type StorageConfig =
  | ({
      readonly type: 'prosody-sql';
      readonly driver: 'sqlite';
      /** Path of the SQLite file. */
      readonly database: string;
      /**
       * `wal`: switch the database to WAL at start (persistent; Prosody works with it), so that
       * readers never wait for an import and exports read one snapshot. `keep` (default): leave
       * the journal mode as Prosody set it.
       */
      readonly journalMode: 'keep' | 'wal';
    } & ProsodyVersionSetting)
  | ({
      readonly type: 'prosody-sql';
      readonly driver: 'postgres' | 'mysql';
      readonly database: string;
      readonly host: string;
      readonly port: number;
      readonly username: string;
      readonly password?: string;
    } & ProsodyVersionSetting)
  | ({
      readonly type: 'prosody-files';
      /** Prosody's data_path. */
      readonly path: string;
    } & ProsodyVersionSetting)
  | EjabberdStorageConfig;

/** ejabberd's generation; absent: detected from the schema (24.12 by `archive.origin_id` or `schema_version`). */
export interface EjabberdVersionSetting {
  readonly serverVersion?: '23.01' | '24.12';
}

/** ejabberd's SQL database (`sql_type`, `sql_database`…, `new_sql_schema`), 23.01 or 24.12. */
export type EjabberdStorageConfig =
  | ({
      readonly type: 'ejabberd-sql';
      readonly driver: 'sqlite';
      /** `new` when ejabberd runs with `new_sql_schema: true`. */
      readonly schema: 'new' | 'default';
      readonly database: string;
    } & EjabberdVersionSetting)
  | ({
      readonly type: 'ejabberd-sql';
      readonly driver: 'postgres' | 'mysql';
      readonly schema: 'new' | 'default';
      readonly database: string;
      readonly host: string;
      readonly port: number;
      readonly username: string;
      readonly password?: string;
    } & EjabberdVersionSetting);

export interface HostConfig {
  /** Which SCRAM hash Prosody's `password_hash` uses on this host. */
  readonly passwordHash: PasswordHash;
  /**
   * Prosody 13: the primary role of an account an import creates, as `prosodyctl` would give it
   * (`prosody:member` unless set); `null` stores none, so Prosody's `default_user_role` applies.
   */
  readonly newAccountRole?: string | null;
}

export interface ComponentConfig {
  readonly enabled: boolean;
  /** e.g. `xmpp://127.0.0.1:5347`. */
  readonly service: string;
  /** The component's JID, e.g. `xporta.example.org`. */
  readonly domain: string;
  readonly secret?: string;
}

export interface LimitsConfig {
  readonly maxUploadBytes: number;
  /** Largest body of every route except the two import uploads (JSON, text). */
  readonly maxJsonBodyBytes: number;
  readonly maxConcurrentImports: number;
  /** Total deadline of a request, and so of an upload. */
  readonly requestTimeoutMs: number;
  /** An upload that sends no byte for this long, while xporta waits for one, is aborted. */
  readonly uploadIdleTimeoutMs: number;
  /** Deadline for receiving a request's header block. */
  readonly headersTimeoutMs: number;
  /** Deadline for receiving a non-upload body (the small JSON ones). */
  readonly bodyTimeoutMs: number;
  /** How long an idle keep-alive connection stays open. */
  readonly keepAliveTimeoutMs: number;
  readonly maxElementBytes: number;
  readonly maxDepth: number;
  /** Most elements in one record of an imported document (the reader's work limit). */
  readonly maxElementNodes: number;
  readonly shutdownTimeoutMs: number;
}

/** Requests xporta itself makes (import-from, the move's data copy); see src/net/outgoing.ts. */

/** The client-protocol reader (pull of a remote account); see src/storage/xmpp-client/. */
export interface XmppClientConfig {
  /** Extra CA certificate (PEM) trusted besides the system roots, for private deployments. */
  readonly caFile?: string;
  /** Accept servers that offer no TLS (SCRAM only, never PLAIN). Off by default. */
  readonly allowPlaintext: boolean;
  /** `domain=host:port` (STARTTLS) or `domain=host:port/tls` entries used instead of DNS SRV. */
  readonly services: readonly string[];
  /** Deadline of each connection step and each request. */
  readonly timeoutMs: number;
  /** Archived messages asked for per MAM page. */
  readonly pageSize: number;
  /** Pulls (imports, exports, commands) running at once in this process; more are refused as busy. */
  readonly maxConcurrentPulls: number;
  /** Most archived messages one pull may carry; a larger archive fails the pull and writes nothing. */
  readonly maxArchiveMessages: number;
}

export interface AuthConfig {
  readonly tokens: readonly OperatorToken[];
  /** HMAC key for short-lived user tokens; generated per process when absent. */
  readonly userTokenSecret?: string;
  readonly userTokenMaxTtlSeconds: number;
  /** Earlier user-token keys, still accepted (never used to sign) while tokens they signed run out. */
  readonly previousUserTokenSecrets: readonly string[];
  /** Failed authentications per client address (and per attempted token id) per minute before failures get 429. */
  readonly failedAuthPerMinute: number;
  /** Requests per minute one token may make; 0 for no quota. */
  readonly requestsPerMinutePerToken: number;
}

export interface AuditConfig {
  /** Where the audit log goes: a file path (created private), or `-` for standard output. */
  readonly file: string;
}

export interface FilesConfig {
  /** Mode of every file xporta creates: 0o600, or 0o640 for a deployment that reads them through a group. */
  readonly mode: PrivateFileMode;
}

export interface ExportsConfig {
  /** How long a downloadable export file (POST /v1/users/{jid}/exports) is kept after it was written. */
  readonly ttlSeconds: number;
  /**
   * Worker threads that write streamed exports (GET …/export), each with its own connection to
   * the storage, so that concurrent exports run side by side: the first export at a time runs on
   * the service's thread, those that come while it runs on the workers; 0 writes them all on the
   * service's thread. Prosody's files are always exported on the service's thread.
   */
  readonly workers: number;
}

/** Completion callbacks of jobs (`callbackUrl`); see src/webhooks.ts. */
export interface WebhooksConfig {
  /** HMAC-SHA256 key of the `X-Xporta-Signature` header; callbacks are refused without it. */
  readonly secret?: string;
  /** Deliveries tried in all before giving up. */
  readonly maxAttempts: number;
  /** Wait before the second attempt; doubled for each next one. */
  readonly initialBackoffMs: number;
}

export interface CorsConfig {
  /** Browser origins (`https://panel.example.org`) allowed to call the API; empty for none. */
  readonly origins: readonly string[];
}

/** The self-service web page for account owners (src/web/); off by default. */
export interface WebConfig {
  readonly enabled: boolean;
  /** How long a signed-in session lasts without use. */
  readonly sessionTtlSeconds: number;
  /** Largest file the page accepts (compressed and decompressed); at most limits.maxUploadBytes. */
  readonly maxUploadBytes: number;
  /** How long an uploaded file waits, checked, for the owner to confirm it. */
  readonly pendingImportTtlSeconds: number;
  /** Failed sign-ins per minute, counted per client address and per account, before sign-in is refused for a while. */
  readonly signInAttemptsPerMinute: number;
}

export interface Config {
  readonly listen: { readonly host: string; readonly port: number };
  /** Base URL that links handed to users start with. */
  readonly publicUrl: string;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Where xporta keeps its own state (the generated operator token hash). */
  readonly dataDir: string;
  readonly storage: StorageConfig;
  readonly hosts: Readonly<Record<string, HostConfig>>;
  readonly auth: AuthConfig;
  readonly limits: LimitsConfig;
  readonly outgoing: OutgoingConfig;
  readonly xmppClient: XmppClientConfig;
  readonly component: ComponentConfig;
  /**
   * Addresses or CIDR ranges of reverse proxies whose X-Forwarded-For is believed; from anyone
   * else the header is ignored and the socket's address is the client's.
   */
  readonly trustedProxies: readonly string[];
  readonly audit: AuditConfig;
  readonly files: FilesConfig;
  readonly exports: ExportsConfig;
  readonly webhooks: WebhooksConfig;
  readonly cors: CorsConfig;
  readonly web: WebConfig;
}

export class ConfigError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`config: ${field}: ${message}`);
    this.name = 'ConfigError';
  }
}
