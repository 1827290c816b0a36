/**
 * Validation of the `storage` section: which backend, and where its data lives.
 */
import { resolve } from 'node:path';
import type { Fields } from './fields.js';
import type { EjabberdStorageConfig, StorageConfig } from './types.js';

export function validateStorage(fields: Fields, dataDir: string): StorageConfig {
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
