/**
 * Validation of a whole configuration: every section read through {@link Fields}, with its
 * defaults and bounds; storage in src/config/validate-storage.ts.
 */
import { availableParallelism } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { parseAllowEntry } from '../lib/net/address-policy.js';
import { Fields, type JsonObject } from './fields.js';
import {
  ConfigError,
  SCOPES,
  type AuditConfig,
  type AuthConfig,
  type ComponentConfig,
  type Config,
  type CorsConfig,
  type ExportsConfig,
  type FilesConfig,
  type HostConfig,
  type LimitsConfig,
  type OperatorToken,
  type OutgoingConfig,
  type Scope,
  type WebhooksConfig,
  type XmppClientConfig,
} from './types.js';
import { validateStorage } from './validate-storage.js';

const DEFAULT_PORT = 8227;

/** The configuration `raw` describes, relative paths resolved against `cwd`; a ConfigError names the first bad field. */
export function validate(raw: JsonObject, cwd: string): Config {
  const root = new Fields(raw, '', cwd);
  root.only(['$schema', 'listen', 'publicUrl', 'logLevel', 'dataDir', 'storage', 'hosts', 'auth', 'limits', 'outgoing', 'xmppClient', 'component', 'trustedProxies', 'audit', 'files', 'exports', 'cors', 'webhooks', 'web']);

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
  exportsFields.only(['ttlSeconds', 'workers']);
  const exports: ExportsConfig = {
    ttlSeconds: exportsFields.integer('ttlSeconds', 3600, 60, 30 * 86_400),
    // The service's thread is one of the threads exports share (ExportWorkers.serviceThreadFirst), so one CPU is already in use.
    workers: exportsFields.integer('workers', Math.max(1, availableParallelism() - 1), 0, 64),
  };

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

  const webFields = root.object('web');
  webFields.only(['enabled', 'sessionTtlSeconds', 'maxUploadBytes', 'pendingImportTtlSeconds', 'signInAttemptsPerMinute']);
  const webEnabled = webFields.boolean('enabled', false);
  const webSessionTtl = webFields.integer('sessionTtlSeconds', 1800, 60, 86_400);
  const webUploadBytes = webFields.integer('maxUploadBytes', 256 * 1024 * 1024, 1024, Number.MAX_SAFE_INTEGER);
  const webPendingTtl = webFields.integer('pendingImportTtlSeconds', 900, 60, 86_400);
  const webAttempts = webFields.integer('signInAttemptsPerMinute', 5, 1, 1000);

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
  xmppClientFields.only(['caFile', 'allowPlaintext', 'services', 'timeoutMs', 'pageSize', 'maxConcurrentPulls', 'maxArchiveMessages']);
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
    maxConcurrentPulls: xmppClientFields.integer('maxConcurrentPulls', 4, 1, 1000),
    maxArchiveMessages: xmppClientFields.integer('maxArchiveMessages', 2_000_000, 1, 1_000_000_000),
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
    web: {
      enabled: webEnabled,
      sessionTtlSeconds: webSessionTtl,
      // The page never takes more than the API would.
      maxUploadBytes: Math.min(webUploadBytes, limits.maxUploadBytes),
      pendingImportTtlSeconds: webPendingTtl,
      signInAttemptsPerMinute: webAttempts,
    },
  };
}
