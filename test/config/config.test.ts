import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactedConfig } from '../../src/config/config.js';
import { REPO_ROOT } from '../support/paths.js';

function tempFile(name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-config-'));
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('defaults to the embedded Prosody-format SQLite store under ./data', () => {
    const config = loadConfig({ env: {}, cwd: '/srv/xporta' });
    expect(config.storage).toEqual({ type: 'prosody-sql', driver: 'sqlite', database: '/srv/xporta/data/prosody.sqlite', journalMode: 'keep' });
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8227 });
    expect(config.hosts).toEqual({ localhost: { passwordHash: 'SHA-1' } });
    expect(config.component.enabled).toBe(false);
  });

  it('reads a file and resolves relative paths against the working directory', () => {
    const path = tempFile(
      'c.json',
      JSON.stringify({ listen: { port: 9000 }, storage: { type: 'prosody-files', path: 'prosody-data' }, hosts: { 'example.org': { passwordHash: 'SHA-256' } } }),
    );
    const config = loadConfig({ configPath: path, env: {}, cwd: '/opt' });
    expect(config.listen.port).toBe(9000);
    expect(config.storage).toEqual({ type: 'prosody-files', path: '/opt/prosody-data' });
    expect(config.hosts['example.org']?.passwordHash).toBe('SHA-256');
  });

  it('takes the server generation and Prosody 13’s role for created accounts, and refuses unknown ones', () => {
    const load = (body: object): ReturnType<typeof loadConfig> => loadConfig({ configPath: tempFile('v.json', JSON.stringify(body)), env: {}, cwd: '/opt' });
    const files = load({ storage: { type: 'prosody-files', path: 'd', serverVersion: '13' }, hosts: { a: { newAccountRole: 'prosody:admin' }, b: { newAccountRole: null }, c: {} } });
    expect(files.storage).toEqual({ type: 'prosody-files', path: '/opt/d', serverVersion: '13' });
    expect(files.hosts).toEqual({ a: { passwordHash: 'SHA-1', newAccountRole: 'prosody:admin' }, b: { passwordHash: 'SHA-1', newAccountRole: null }, c: { passwordHash: 'SHA-1' } });
    expect(load({ storage: { type: 'ejabberd-sql', database: '/e.db', serverVersion: '24.12' } }).storage).toMatchObject({ serverVersion: '24.12' });
    expect(load({ storage: { type: 'prosody-sql', driver: 'postgres' } }).storage).not.toHaveProperty('serverVersion');
    expect(() => load({ storage: { type: 'prosody-sql', serverVersion: '24.12' } })).toThrow(/storage\.serverVersion: must be one of 0\.12, 13/);
    expect(() => load({ storage: { type: 'ejabberd-sql', database: '/e.db', serverVersion: '13' } })).toThrow(/storage\.serverVersion: must be one of 23\.01, 24\.12/);
    expect(() => load({ hosts: { a: { newAccountRole: 5 } } })).toThrow(/hosts\.a\.newAccountRole/);
  });

  it('lets XPORTA_* variables override nested fields, camel-casing segments', () => {
    const config = loadConfig({
      env: { XPORTA_LISTEN__PORT: '8080', XPORTA_LIMITS__MAX_CONCURRENT_IMPORTS: '5', XPORTA_LOG_LEVEL: 'warn' },
      cwd: '/x',
    });
    expect(config.listen.port).toBe(8080);
    expect(config.limits.maxConcurrentImports).toBe(5);
    expect(config.logLevel).toBe('warn');
  });

  it('refuses internal addresses by default: the outgoing allow-list starts empty', () => {
    const config = loadConfig({ env: {}, cwd: '/x' });
    expect(config.outgoing).toEqual({ allow: [], idleTimeoutMs: 60_000, totalTimeoutMs: 3_600_000, maxAnswerBytes: 65_536 });
    expect(config.limits.maxElementNodes).toBe(50_000);
    const allowed = loadConfig({ env: { XPORTA_OUTGOING__ALLOW: '["127.0.0.0/8", "::1", "xporta.internal"]' }, cwd: '/x' });
    expect(allowed.outgoing.allow).toEqual(['127.0.0.0/8', '::1', 'xporta.internal']);
  });

  it('reads secrets from files and never prints them', () => {
    const secretPath = tempFile('secret', 'component-secret-value\n');
    const config = loadConfig({
      env: { XPORTA_COMPONENT__ENABLED: 'true', XPORTA_COMPONENT__SECRET_FILE: secretPath },
      cwd: '/x',
    });
    expect(config.component.secret).toBe('component-secret-value');
    expect(JSON.stringify(redactedConfig(config))).not.toContain('component-secret-value');
  });

  it.each([
    [{ listen: { port: 'abc' } }, 'listen.port'],
    [{ listen: { port: 70000 } }, 'listen.port'],
    [{ storage: { driver: 'oracle' } }, 'storage.driver'],
    [{ storage: { type: 'prosody-files' } }, 'storage.path'],
    [{ logLevel: 'loud' }, 'logLevel'],
    [{ publicUrl: 'ftp://x' }, 'publicUrl'],
    [{ auth: { tokens: [{ sha256: 'nothex' }] } }, 'auth.tokens[0].sha256'],
    [{ auth: { tokens: [{ sha256: 'a'.repeat(64), scopes: ['root'] }] } }, 'auth.tokens[0].scopes'],
    [{ auth: { userTokenSecret: 'short' } }, 'auth.userTokenSecret'],
    [{ component: { enabled: true } }, 'component.secret'],
    [{ hosts: { 'Example.org': {} } }, 'hosts.Example.org'],
    [{ limtis: {} }, 'limtis'],
    [{ storage: { driver: 'postgres', passwrd: 'x' } }, 'storage.passwrd'],
    [{ outgoing: { allow: ['10.0.0.0/40'] } }, 'outgoing.allow[0]'],
    [{ outgoing: { allow: ['127.0.0.1', 'not a host'] } }, 'outgoing.allow[1]'],
    [{ outgoing: { allow: '127.0.0.0/8' } }, 'outgoing.allow'],
    [{ outgoing: { idleTimeoutMs: 0 } }, 'outgoing.idleTimeoutMs'],
    [{ outgoing: { follow: true } }, 'outgoing.follow'],
    [{ limits: { maxElementNodes: 0 } }, 'limits.maxElementNodes'],
  ])('names the field of a bad value: %j', (raw, field) => {
    const path = tempFile('bad.json', JSON.stringify(raw));
    const err = configError(() => loadConfig({ configPath: path, env: {}, cwd: '/x' }));
    expect(err.field).toBe(field);
    expect(err.message).toContain(field);
  });

  it('names the variable-derived field when an environment override is bad', () => {
    const err = configError(() => loadConfig({ env: { XPORTA_LISTEN__PORT: '-1' }, cwd: '/x' }));
    expect(err.field).toBe('listen.port');
  });

  it('reports an unreadable or non-JSON file', () => {
    expect(configError(() => loadConfig({ configPath: '/nonexistent/x.json', env: {} })).message).toMatch(/ENOENT/);
    const path = tempFile('broken.json', '{ nope');
    expect(configError(() => loadConfig({ configPath: path, env: {} })).message).toMatch(/not valid JSON/);
  });
});

describe('config.example.json', () => {
  it('is a valid configuration naming every section the loader knows', () => {
    const example = readFileSync(join(REPO_ROOT, 'config.example.json'), 'utf8');
    // Its secrets point at /run/secrets; give them real files so the whole file validates.
    const withSecrets = example.replace(/"\/run\/secrets\/[^"]+"/g, () => JSON.stringify(tempFile('secret', 's'.repeat(40))));
    const config = loadConfig({ configPath: tempFile('example.json', withSecrets), env: {}, cwd: '/srv/xporta' });
    expect(config.storage).toMatchObject({ type: 'prosody-sql', driver: 'postgres', password: 's'.repeat(40) });
    expect(config.auth.tokens.map((t) => t.name)).toEqual(['hosting-panel', 'backup-job']);
    expect(config.component.domain).toBe('xporta.example.org');
    expect(config.auth.previousUserTokenSecrets).toEqual(['s'.repeat(40)]);
    expect(config.trustedProxies).toEqual(['127.0.0.1', '::1']);
    expect(config.audit.file).toBe('/srv/xporta/data/audit.log');
    expect(config.files.mode).toBe(0o600);
    expect(config.exports.ttlSeconds).toBe(3600);
    expect(config.cors.origins).toEqual(['https://panel.example.org']);
    expect(config.web).toEqual({ enabled: false, sessionTtlSeconds: 1800, maxUploadBytes: 268435456, pendingImportTtlSeconds: 900, signInAttemptsPerMinute: 5 });
    expect(config.webhooks).toEqual({ secret: 's'.repeat(40), maxAttempts: 6, initialBackoffMs: 1000 });
    expect(Object.keys(JSON.parse(example) as object).sort()).toEqual(
      ['audit', 'auth', 'component', 'cors', 'dataDir', 'exports', 'files', 'hosts', 'limits', 'listen', 'logLevel', 'outgoing', 'publicUrl', 'storage', 'trustedProxies', 'web', 'webhooks', 'xmppClient'].sort(),
    );
  });
});
