/**
 * The storage backend a configuration names. The embedded default (SQLite under ./data) gets its
 * directory, a private file and Prosody's tables created on start; a networked database may be down at start,
 * which /health then reports, and is prepared on first use. Prosody's file store is recovered
 * from any interrupted import first.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config, StorageConfig } from '../config/config.js';
import { ensurePrivateFile } from '../lib/private-files.js';
import type { StorageBackend } from './backend.js';
import { EjabberdSqlBackend } from './ejabberd-sql/backend.js';
import { ProsodyFilesBackend } from './prosody-files/backend.js';
import { ProsodySqlBackend, type ProsodySqlConnection } from './prosody-sql/backend.js';

type NetworkedConnection = Extract<ProsodySqlConnection, { dialect: 'postgresql' | 'mysql' }>;

/**
 * Archive rows per query. Each batch's parsed stanzas live until they are written out: batches
 * small enough stay in V8's young generation instead of being promoted whole to the old one,
 * which keeps a big export's peak memory down at no cost in speed.
 */
const READ_BATCH_SIZE = 200;

export async function openStorage(config: Config): Promise<StorageBackend> {
  const { storage, hosts } = config;
  if (storage.type === 'prosody-files') {
    const backend = new ProsodyFilesBackend({ path: storage.path, hosts, ...(storage.serverVersion ? { serverVersion: storage.serverVersion } : {}) });
    // Finishes or rolls back an import a crash interrupted before anything reads the files.
    await backend.recover();
    return backend;
  }
  // ejabberd makes and owns its tables; xporta never creates them. A running ejabberd keeps
  // serving cached data after an import until `ejabberdctl clear_cache` (see README).
  if (storage.type === 'ejabberd-sql') return ejabberdBackend(storage, hosts);
  const version = storage.serverVersion ? { serverVersion: storage.serverVersion } : {};
  if (storage.driver === 'sqlite') {
    mkdirSync(dirname(storage.database), { recursive: true });
    // Made private before SQLite opens it (SCRAM keys and messages live here); its -wal and
    // -journal files take its mode. An existing file keeps the mode its owner gave it.
    ensurePrivateFile(storage.database, config.files.mode);
    const backend = new ProsodySqlBackend({
      dialect: 'sqlite',
      database: storage.database,
      ...(storage.journalMode === 'wal' ? { walMode: true } : {}),
      hosts,
      readBatchSize: READ_BATCH_SIZE,
      ...version,
    });
    await backend.ensureSchema();
    return backend;
  }
  return new ProsodySqlBackend({ ...networkedConnection(storage), hosts, readBatchSize: READ_BATCH_SIZE, ...version });
}

/**
 * A second backend over the storage `openStorage` opened, for reading only, made on another thread
 * of the same process (streamed exports run on worker threads): it prepares, creates and recovers
 * nothing (the first backend did at start) and reads as that one does, snapshots included.
 * Undefined for Prosody's files, whose snapshots take commit locks that only the backend running
 * imports holds.
 */
export function openStorageReader(storage: StorageConfig, hosts: Config['hosts']): StorageBackend | undefined {
  if (storage.type === 'prosody-files') return undefined;
  if (storage.type === 'ejabberd-sql') return ejabberdBackend(storage, hosts);
  const version = storage.serverVersion ? { serverVersion: storage.serverVersion } : {};
  if (storage.driver === 'sqlite') return new ProsodySqlBackend({ dialect: 'sqlite', database: storage.database, hosts, readBatchSize: READ_BATCH_SIZE, ...version });
  return new ProsodySqlBackend({ ...networkedConnection(storage), hosts, readBatchSize: READ_BATCH_SIZE, ...version });
}

/** hosts.<domain>.passwordHash says which credentials ejabberd's auth_scram_hash can use there. */
function ejabberdBackend(storage: Extract<StorageConfig, { type: 'ejabberd-sql' }>, hosts: Config['hosts']): EjabberdSqlBackend {
  const ejabberdHosts = Object.fromEntries(Object.entries(hosts).map(([h, c]) => [h, { passwordHash: c.passwordHash }]));
  const settings = {
    hosts: ejabberdHosts,
    newSchema: storage.schema === 'new',
    readBatchSize: READ_BATCH_SIZE,
    ...(storage.serverVersion ? { serverVersion: storage.serverVersion } : {}),
  };
  if (storage.driver === 'sqlite') return new EjabberdSqlBackend({ dialect: 'sqlite', database: storage.database, ...settings });
  return new EjabberdSqlBackend({ ...networkedConnection(storage), ...settings });
}

/** A networked database's connection in the dialects' terms: the same for Prosody's and ejabberd's stores. */
function networkedConnection(storage: Extract<StorageConfig, { driver: 'postgres' | 'mysql' }>): NetworkedConnection {
  return {
    dialect: storage.driver === 'postgres' ? 'postgresql' : 'mysql',
    host: storage.host,
    port: storage.port,
    user: storage.username,
    ...(storage.password !== undefined ? { password: storage.password } : {}),
    database: storage.database,
  };
}
