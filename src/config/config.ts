/**
 * Configuration: a JSON file (`--config` or XPORTA_CONFIG) overlaid with XPORTA_* environment
 * variables, validated once at start. Every problem names the field, so an operator can fix a
 * deployment from the first line of output. Secrets may come from files (`…File` fields) and are
 * never part of what gets logged (see {@link redactedConfig}).
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseAllowEntry } from '../lib/net/address-policy.js';
import type { PrivateFileMode } from '../lib/private-files.js';

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
export interface OutgoingConfig {
  /**
   * CIDR ranges (`10.1.0.0/16`, `::1/128`, a bare address) and host names that may be reached
   * even though they are loopback, private, link-local or otherwise internal. Empty by default.
   */
  readonly allow: readonly string[];
  /** Longest wait for a connection, the answer's headers, or the next bytes of its body (see src/net/outgoing.ts). */
  readonly idleTimeoutMs: number;
  /** Longest a whole exchange may take, body included. */
  readonly totalTimeoutMs: number;
  /** Largest JSON answer read (the move's import report); documents are bounded by maxUploadBytes. */
  readonly maxAnswerBytes: number;
}

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

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const ENV_PREFIX = 'XPORTA_';
/** Variables with a meaning of their own, not field overrides. */
const ENV_RESERVED = new Set(['XPORTA_CONFIG', 'XPORTA_OPERATOR_TOKEN']);

export interface LoadOptions {
  /** Path given with --config; falls back to XPORTA_CONFIG; no file means defaults. */
  readonly configPath?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Directory relative paths in the config resolve against (the config file's by default). */
  readonly cwd?: string;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const path = options.configPath ?? env.XPORTA_CONFIG;
  const cwd = options.cwd ?? process.cwd();
  let raw: JsonObject = {};
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError('(file)', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (!isObject(parsed)) throw new Error('the top level must be an object');
      raw = parsed;
    } catch (err) {
      throw new ConfigError('(file)', `${path} is not valid JSON: ${(err as Error).message}`);
    }
  }
  applyEnvOverrides(raw, env);
  return validate(raw, cwd);
}

/**
 * `XPORTA_LISTEN__PORT=8080` sets `listen.port`: `__` separates levels, single `_` inside a
 * segment becomes camelCase (`XPORTA_LIMITS__MAX_UPLOAD_BYTES` → `limits.maxUploadBytes`).
 * Values that parse as JSON are taken as such (numbers, booleans, arrays); others as strings.
 */
function applyEnvOverrides(raw: JsonObject, env: NodeJS.ProcessEnv): void {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || ENV_RESERVED.has(name) || value === undefined) continue;
    const segments = name
      .slice(ENV_PREFIX.length)
      .split('__')
      .map((s) => s.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()));
    let target: JsonObject = raw;
    for (const segment of segments.slice(0, -1)) {
      const next = target[segment];
      if (isObject(next)) target = next;
      else target = target[segment] = {};
    }
    const leaf = segments[segments.length - 1];
    if (leaf) target[leaf] = parseEnvValue(value);
  }
}

function parseEnvValue(value: string): Json {
  try {
    return JSON.parse(value) as Json;
  } catch {
    return value;
  }
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// Validation: small typed readers that name the field they complain about.

class Fields {
  constructor(
    private readonly obj: JsonObject,
    private readonly prefix: string,
    private readonly cwd: string,
  ) {}

  private path(key: string): string {
    return this.prefix ? `${this.prefix}.${key}` : key;
  }

  /** Rejects keys nobody reads: a typo must not silently fall back to a default. */
  only(keys: readonly string[]): void {
    for (const key of Object.keys(this.obj)) {
      if (!keys.includes(key)) throw new ConfigError(this.path(key), `unknown field (known: ${keys.join(', ')})`);
    }
  }

  object(key: string): Fields {
    const v = this.obj[key];
    if (v === undefined) return new Fields({}, this.path(key), this.cwd);
    if (!isObject(v)) throw new ConfigError(this.path(key), 'must be an object');
    return new Fields(v, this.path(key), this.cwd);
  }

  entries(key: string): [string, Fields][] {
    return Object.keys(this.object(key).obj).map((k) => [k, this.object(key).object(k)]);
  }

  array(key: string): Fields[] {
    const v = this.obj[key];
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new ConfigError(this.path(key), 'must be an array');
    return v.map((item, i) => {
      if (!isObject(item)) throw new ConfigError(`${this.path(key)}[${i}]`, 'must be an object');
      return new Fields(item, `${this.path(key)}[${i}]`, this.cwd);
    });
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined;
  }

  /** A non-empty string, `null`, or undefined when absent. */
  nullableString(key: string): string | null | undefined {
    if (this.obj[key] === null) return null;
    return this.has(key) ? this.string(key) : undefined;
  }

  /** One of `allowed`, or undefined when absent. */
  optionalOneOf<T extends string>(key: string, allowed: readonly T[]): T | undefined {
    return this.has(key) ? this.oneOf(key, allowed) : undefined;
  }

  string(key: string, fallback?: string): string {
    const v = this.obj[key];
    if (v === undefined) {
      if (fallback === undefined) throw new ConfigError(this.path(key), 'is required');
      return fallback;
    }
    if (typeof v !== 'string' || v === '') throw new ConfigError(this.path(key), `must be a non-empty string (got ${JSON.stringify(v)})`);
    return v;
  }

  optionalString(key: string): string | undefined {
    return this.obj[key] === undefined ? undefined : this.string(key);
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback?: T): T {
    const v = this.string(key, fallback);
    if (!(allowed as readonly string[]).includes(v)) {
      throw new ConfigError(this.path(key), `must be one of ${allowed.join(', ')} (got ${JSON.stringify(v)})`);
    }
    return v as T;
  }

  integer(key: string, fallback: number, min: number, max: number): number {
    const v = this.obj[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new ConfigError(this.path(key), `must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
    }
    return v;
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.obj[key] ?? fallback;
    if (typeof v !== 'boolean') throw new ConfigError(this.path(key), `must be true or false (got ${JSON.stringify(v)})`);
    return v;
  }

  stringArray(key: string, fallback: readonly string[]): string[] {
    const v = this.obj[key];
    if (v === undefined) return [...fallback];
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && s !== '')) {
      throw new ConfigError(this.path(key), `must be an array of non-empty strings (got ${JSON.stringify(v)})`);
    }
    return v as string[];
  }

  filePath(key: string, fallback?: string): string {
    const p = this.string(key, fallback);
    return isAbsolute(p) ? p : resolve(this.cwd, p);
  }

  /** A secret given inline (`key`) or read from a file (`keyFile`), never both. */
  secret(key: string): string | undefined {
    const fileKey = `${key}File`;
    if (this.has(key) && this.has(fileKey)) throw new ConfigError(this.path(key), `give either ${key} or ${fileKey}, not both`);
    if (this.has(key)) return this.string(key);
    if (!this.has(fileKey)) return undefined;
    const file = this.filePath(fileKey);
    try {
      const value = readFileSync(file, 'utf8').trim();
      if (value === '') throw new ConfigError(this.path(fileKey), `${file} is empty`);
      return value;
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(this.path(fileKey), `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
}

const DEFAULT_PORT = 8227;

function validate(raw: JsonObject, cwd: string): Config {
  const root = new Fields(raw, '', cwd);
  root.only(['$schema', 'listen', 'publicUrl', 'logLevel', 'dataDir', 'storage', 'hosts', 'auth', 'limits', 'outgoing', 'xmppClient', 'component', 'trustedProxies', 'audit', 'files', 'exports', 'cors', 'webhooks']);

  const listenFields = root.object('listen');
  listenFields.only(['host', 'port']);
  const listen = { host: listenFields.string('host', '127.0.0.1'), port: listenFields.integer('port', DEFAULT_PORT, 0, 65535) };

  const publicUrl = root.string('publicUrl', `http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`);
  try {
    const url = new URL(publicUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error();
  } catch {
    throw new ConfigError('publicUrl', `must be an http(s) URL (got ${JSON.stringify(publicUrl)})`);
  }

  const dataDir = root.filePath('dataDir', 'data');
  const storage = validateStorage(root.object('storage'), dataDir);

  const hosts: Record<string, HostConfig> = {};
  for (const [host, fields] of root.entries('hosts')) {
    fields.only(['passwordHash', 'newAccountRole']);
    if (host !== host.toLowerCase() || !/^[^\s/@]+$/.test(host)) throw new ConfigError(`hosts.${host}`, 'must be a lower-case domain name');
    const role = fields.nullableString('newAccountRole');
    hosts[host] = { passwordHash: fields.oneOf('passwordHash', ['SHA-1', 'SHA-256', 'plain'] as const, 'SHA-1'), ...(role !== undefined ? { newAccountRole: role } : {}) };
  }
  if (Object.keys(hosts).length === 0) hosts.localhost = { passwordHash: 'SHA-1' };

  const authFields = root.object('auth');
  authFields.only([
    'tokens',
    'userTokenSecret',
    'userTokenSecretFile',
    'previousUserTokenSecret',
    'previousUserTokenSecretFile',
    'userTokenMaxTtlSeconds',
    'failedAuthPerMinute',
    'requestsPerMinutePerToken',
  ]);
  const tokens = authFields.array('tokens').map((t, i): OperatorToken => {
    t.only(['name', 'sha256', 'scopes', 'hosts']);
    const sha256 = t.string('sha256').toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new ConfigError(`auth.tokens[${i}].sha256`, 'must be 64 hex digits (sha256 of the token)');
    const scopes = t.stringArray('scopes', SCOPES);
    for (const s of scopes) {
      if (!(SCOPES as readonly string[]).includes(s)) throw new ConfigError(`auth.tokens[${i}].scopes`, `unknown scope ${JSON.stringify(s)} (known: ${SCOPES.join(', ')})`);
    }
    return { name: t.string('name', `token-${i + 1}`), sha256, scopes: scopes as Scope[], hosts: t.stringArray('hosts', ['*']) };
  });
  const userTokenSecret = authFields.secret('userTokenSecret');
  if (userTokenSecret !== undefined && userTokenSecret.length < 32) {
    throw new ConfigError('auth.userTokenSecret', 'must be at least 32 characters');
  }
  const previousUserTokenSecret = authFields.secret('previousUserTokenSecret');
  if (previousUserTokenSecret !== undefined && userTokenSecret === undefined) {
    throw new ConfigError('auth.previousUserTokenSecret', 'needs auth.userTokenSecret (the key that replaced it)');
  }
  const auth: AuthConfig = {
    tokens,
    ...(userTokenSecret !== undefined ? { userTokenSecret } : {}),
    previousUserTokenSecrets: previousUserTokenSecret !== undefined ? [previousUserTokenSecret] : [],
    userTokenMaxTtlSeconds: authFields.integer('userTokenMaxTtlSeconds', 3600, 60, 3600),
    failedAuthPerMinute: authFields.integer('failedAuthPerMinute', 20, 1, 100_000),
    requestsPerMinutePerToken: authFields.integer('requestsPerMinutePerToken', 1200, 0, 10_000_000),
  };

  const trustedProxies = root.stringArray('trustedProxies', []);
  for (const proxy of trustedProxies) {
    if (!/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(proxy)) {
      throw new ConfigError('trustedProxies', `must list IP addresses or CIDR ranges (got ${JSON.stringify(proxy)})`);
    }
  }

  const auditFields = root.object('audit');
  auditFields.only(['file']);
  const auditFile = auditFields.string('file', 'audit.log');
  const audit: AuditConfig = { file: auditFile === '-' ? '-' : isAbsolute(auditFile) ? auditFile : auditFields.has('file') ? auditFields.filePath('file') : resolve(dataDir, auditFile) };

  const filesFields = root.object('files');
  filesFields.only(['mode']);
  const files: FilesConfig = { mode: filesFields.oneOf('mode', ['0600', '0640'] as const, '0600') === '0640' ? 0o640 : 0o600 };

  const exportsFields = root.object('exports');
  exportsFields.only(['ttlSeconds']);
  const exports: ExportsConfig = { ttlSeconds: exportsFields.integer('ttlSeconds', 3600, 60, 30 * 86_400) };

  const webhooksFields = root.object('webhooks');
  webhooksFields.only(['secret', 'secretFile', 'maxAttempts', 'initialBackoffMs']);
  const webhookSecret = webhooksFields.secret('secret');
  const webhooks: WebhooksConfig = {
    ...(webhookSecret !== undefined ? { secret: webhookSecret } : {}),
    maxAttempts: webhooksFields.integer('maxAttempts', 6, 1, 20),
    initialBackoffMs: webhooksFields.integer('initialBackoffMs', 1000, 10, 3_600_000),
  };

  const corsFields = root.object('cors');
  corsFields.only(['origins']);
  const origins = corsFields.stringArray('origins', []);
  for (const origin of origins) {
    let valid = false;
    try {
      const url = new URL(origin);
      valid = (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === origin;
    } catch {
      valid = false;
    }
    if (!valid) throw new ConfigError('cors.origins', `must list origins like https://panel.example.org, without path or trailing slash (got ${JSON.stringify(origin)})`);
  }
  const cors: CorsConfig = { origins };

  const limitFields = root.object('limits');
  limitFields.only([
    'maxUploadBytes',
    'maxJsonBodyBytes',
    'maxConcurrentImports',
    'requestTimeoutMs',
    'uploadIdleTimeoutMs',
    'headersTimeoutMs',
    'bodyTimeoutMs',
    'keepAliveTimeoutMs',
    'maxElementBytes',
    'maxDepth',
    'maxElementNodes',
    'shutdownTimeoutMs',
  ]);
  const limits: LimitsConfig = {
    maxUploadBytes: limitFields.integer('maxUploadBytes', 4 * 1024 ** 3, 1024, Number.MAX_SAFE_INTEGER),
    maxJsonBodyBytes: limitFields.integer('maxJsonBodyBytes', 64 * 1024, 1024, 64 * 1024 ** 2),
    maxConcurrentImports: limitFields.integer('maxConcurrentImports', 2, 1, 1000),
    requestTimeoutMs: limitFields.integer('requestTimeoutMs', 3_600_000, 1000, 86_400_000),
    uploadIdleTimeoutMs: limitFields.integer('uploadIdleTimeoutMs', 30_000, 100, 3_600_000),
    headersTimeoutMs: limitFields.integer('headersTimeoutMs', 10_000, 100, 600_000),
    bodyTimeoutMs: limitFields.integer('bodyTimeoutMs', 30_000, 100, 600_000),
    keepAliveTimeoutMs: limitFields.integer('keepAliveTimeoutMs', 5_000, 100, 600_000),
    maxElementBytes: limitFields.integer('maxElementBytes', 16 * 1024 ** 2, 1024, 1024 ** 3),
    maxDepth: limitFields.integer('maxDepth', 64, 8, 1024),
    maxElementNodes: limitFields.integer('maxElementNodes', 50_000, 16, 10_000_000),
    shutdownTimeoutMs: limitFields.integer('shutdownTimeoutMs', 30_000, 0, 3_600_000),
  };

  const outgoingFields = root.object('outgoing');
  outgoingFields.only(['allow', 'idleTimeoutMs', 'totalTimeoutMs', 'maxAnswerBytes']);
  const allow = outgoingFields.stringArray('allow', []);
  allow.forEach((entry, i) => {
    try {
      parseAllowEntry(entry);
    } catch (err) {
      throw new ConfigError(`outgoing.allow[${i}]`, (err as Error).message);
    }
  });
  const outgoing: OutgoingConfig = {
    allow,
    idleTimeoutMs: outgoingFields.integer('idleTimeoutMs', 60_000, 100, 3_600_000),
    totalTimeoutMs: outgoingFields.integer('totalTimeoutMs', 3_600_000, 100, 86_400_000),
    maxAnswerBytes: outgoingFields.integer('maxAnswerBytes', 64 * 1024, 1024, 16 * 1024 ** 2),
  };

  const xmppClientFields = root.object('xmppClient');
  xmppClientFields.only(['caFile', 'allowPlaintext', 'services', 'timeoutMs', 'pageSize']);
  const services = xmppClientFields.stringArray('services', []);
  services.forEach((entry, i) => {
    if (!/^[^=\s]+=(\[[^\]]+\]|[^:\s/]+):\d{1,5}(\/tls)?$/.test(entry)) throw new ConfigError(`xmppClient.services[${i}]`, 'must be domain=host:port or domain=host:port/tls');
  });
  const caFile = xmppClientFields.has('caFile') ? xmppClientFields.filePath('caFile') : undefined;
  const xmppClient: XmppClientConfig = {
    ...(caFile !== undefined ? { caFile } : {}),
    allowPlaintext: xmppClientFields.boolean('allowPlaintext', false),
    services,
    timeoutMs: xmppClientFields.integer('timeoutMs', 30_000, 100, 600_000),
    pageSize: xmppClientFields.integer('pageSize', 250, 1, 10_000),
  };

  const componentFields = root.object('component');
  componentFields.only(['enabled', 'service', 'domain', 'secret', 'secretFile']);
  const enabled = componentFields.boolean('enabled', false);
  const secret = componentFields.secret('secret');
  if (enabled && secret === undefined) throw new ConfigError('component.secret', 'is required when the component is enabled (or give component.secretFile)');
  const component: ComponentConfig = {
    enabled,
    service: componentFields.string('service', 'xmpp://127.0.0.1:5347'),
    domain: componentFields.string('domain', 'xporta.localhost'),
    ...(secret !== undefined ? { secret } : {}),
  };
  if (!/^xmpps?:\/\//.test(component.service)) throw new ConfigError('component.service', `must be an xmpp:// URL (got ${JSON.stringify(component.service)})`);

  return {
    listen,
    publicUrl,
    logLevel: root.oneOf('logLevel', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    dataDir,
    storage,
    hosts,
    auth,
    limits,
    outgoing,
    xmppClient,
    component,
    trustedProxies,
    audit,
    files,
    exports,
    cors,
    webhooks,
  };
}

function validateStorage(fields: Fields, dataDir: string): StorageConfig {
  const type = fields.oneOf('type', ['prosody-sql', 'prosody-files', 'ejabberd-sql'] as const, 'prosody-sql');
  if (type === 'ejabberd-sql') return validateEjabberdStorage(fields);
  const v = fields.optionalOneOf('serverVersion', ['0.12', '13'] as const);
  const version = v !== undefined ? { serverVersion: v } : {};
  if (type === 'prosody-files') {
    fields.only(['type', 'path', 'serverVersion']);
    return { type, path: fields.filePath('path'), ...version };
  }
  const driver = fields.oneOf('driver', ['sqlite', 'postgres', 'mysql'] as const, 'sqlite');
  if (driver === 'sqlite') {
    fields.only(['type', 'driver', 'database', 'serverVersion', 'journalMode']);
    return {
      type,
      driver,
      database: fields.has('database') ? fields.filePath('database') : resolve(dataDir, 'prosody.sqlite'),
      journalMode: fields.oneOf('journalMode', ['keep', 'wal'] as const, 'keep'),
      ...version,
    };
  }
  fields.only(['type', 'driver', 'database', 'host', 'port', 'username', 'password', 'passwordFile', 'serverVersion']);
  const password = fields.secret('password');
  return {
    type,
    driver,
    ...version,
    database: fields.string('database', 'prosody'),
    host: fields.string('host', '127.0.0.1'),
    port: fields.integer('port', driver === 'postgres' ? 5432 : 3306, 1, 65535),
    username: fields.string('username', 'prosody'),
    ...(password !== undefined ? { password } : {}),
  };
}

/** ejabberd has no default database location of its own that xporta could assume: `database` is required. */
function validateEjabberdStorage(fields: Fields): EjabberdStorageConfig {
  const type = 'ejabberd-sql';
  const driver = fields.oneOf('driver', ['sqlite', 'postgres', 'mysql'] as const, 'sqlite');
  const schema = fields.oneOf('schema', ['new', 'default'] as const, 'default');
  const v = fields.optionalOneOf('serverVersion', ['23.01', '24.12'] as const);
  const version = v !== undefined ? { serverVersion: v } : {};
  if (driver === 'sqlite') {
    fields.only(['type', 'driver', 'schema', 'database', 'serverVersion']);
    return { type, driver, schema, database: fields.filePath('database'), ...version };
  }
  fields.only(['type', 'driver', 'schema', 'database', 'host', 'port', 'username', 'password', 'passwordFile', 'serverVersion']);
  const password = fields.secret('password');
  return {
    type,
    driver,
    schema,
    ...version,
    database: fields.string('database', 'ejabberd'),
    host: fields.string('host', '127.0.0.1'),
    port: fields.integer('port', driver === 'postgres' ? 5432 : 3306, 1, 65535),
    username: fields.string('username', 'ejabberd'),
    ...(password !== undefined ? { password } : {}),
  };
}

/** The config with every secret replaced, for logs and `xporta config --check`. */
export function redactedConfig(config: Config): unknown {
  return JSON.parse(
    JSON.stringify(config, (key, value: unknown) =>
      ['password', 'secret', 'userTokenSecret', 'previousUserTokenSecrets', 'sha256'].includes(key) && value !== undefined ? '[redacted]' : value,
    ),
  );
}
