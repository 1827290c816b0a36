// @ts-check
/**
 * The SQLite writer's worker thread (see writer.ts): one write connection, opened by `begin` and
 * closed by `commit` or `rollback`, and one reply per request, in order. Plain JavaScript checked
 * by TypeScript (JSDoc), so that Node starts it as is from src/ (tests) and from dist/.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/** @typedef {import('./writer-protocol.js').WriterRequest} WriterRequest */
/** @typedef {import('./writer-protocol.js').WriterReply} WriterReply */
/** @typedef {import('./writer-protocol.js').WriterWorkerData} WriterWorkerData */
/** @typedef {import('../dialect.js').SqlParam} SqlParam */
/** @typedef {import('../dialect.js').SqlRow} SqlRow */
/** @typedef {import('better-sqlite3').Statement<SqlParam[], SqlRow>} Statement */

if (!parentPort) throw new Error('writer-worker.mjs runs as a worker thread');
const port = parentPort;
const options = /** @type {WriterWorkerData} */ (workerData);

/** @type {import('better-sqlite3').Database | undefined} */
let db;
/** @type {Map<string, Statement>} */
const statements = new Map();

/** The connection of the transaction in progress. */
function connection() {
  if (!db) throw new Error('no transaction in progress');
  return db;
}

/** @param {string} sql @returns {Statement} */
function prepare(sql) {
  let statement = statements.get(sql);
  if (!statement) {
    statement = /** @type {Statement} */ (connection().prepare(sql));
    statements.set(sql, statement);
  }
  return statement;
}

function close() {
  statements.clear();
  db?.close();
  db = undefined;
}

/** @param {WriterRequest} request @returns {WriterReply} */
function execute({ id, op, sql, params }) {
  switch (op) {
    case 'begin': {
      const opened = new Database(options.database, { timeout: options.busyTimeoutMs });
      db = opened;
      try {
        opened.pragma(`cache_size = -${options.cacheKib}`);
        // The write lock now, rather than failing to upgrade a read lock halfway through an import.
        opened.exec('BEGIN IMMEDIATE');
      } catch (err) {
        close();
        throw err;
      }
      return { id };
    }
    case 'exec': {
      const statement = prepare(sql ?? '');
      const values = params ?? [];
      if (statement.reader) return { id, rows: statement.all(...values) };
      return { id, changes: statement.run(...values).changes };
    }
    case 'commit':
      try {
        connection().exec('COMMIT');
      } finally {
        close();
      }
      return { id };
    case 'rollback':
      if (db) {
        try {
          if (db.inTransaction) db.exec('ROLLBACK');
        } finally {
          close();
        }
      }
      return { id };
  }
}

/** @param {unknown} err @returns {import('./writer-protocol.js').WriterFailure} */
function failure(err) {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const code = /** @type {{ code?: unknown }} */ (err).code;
  return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
}

port.on('message', (/** @type {WriterRequest} */ request) => {
  /** @type {WriterReply} */
  let reply;
  try {
    reply = execute(request);
  } catch (err) {
    reply = { id: request.id, error: failure(err) };
  }
  port.postMessage(reply);
});
