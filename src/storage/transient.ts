/**
 * Which database failures are worth trying again: the connection went away, the server is
 * shutting down or starting, or the transaction lost a deadlock, a lock wait or a serialization
 * check. Everything else (a constraint, bad SQL, bad data) fails the same way on a second try.
 */

/** PostgreSQL SQLSTATEs (Appendix A): connection exceptions, deadlock, serialization, shutdown. */
const PG_TRANSIENT_STATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
  '57P01', // admin_shutdown (pg_terminate_backend)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
]);

/** MySQL/MariaDB error numbers. */
const MYSQL_TRANSIENT_ERRNOS = new Set([
  1205, // ER_LOCK_WAIT_TIMEOUT
  1213, // ER_LOCK_DEADLOCK
  1040, // ER_CON_COUNT_ERROR
  1053, // ER_SERVER_SHUTDOWN
  1927, // ER_CONNECTION_KILLED (MariaDB)
  2006, // CR_SERVER_GONE_ERROR
  2013, // CR_SERVER_LOST
]);

/** Node and driver codes for a connection that broke or never came up. */
const CONNECTION_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CONNECTION_KILLED',
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
]);

/** pg reports a socket closed under a running query with this message and no code. */
const PG_CONNECTION_MESSAGES = [/^Connection terminated/, /^Client has encountered a connection error/, /^Client was closed/];

function field(err: object, name: string): unknown {
  return (err as Record<string, unknown>)[name];
}

/** Whether `err`, or an error it wraps (`cause`), is a failure a later attempt may not meet. */
export function isTransientDatabaseError(err: unknown, depth = 0): boolean {
  if (typeof err !== 'object' || err === null || depth > 4) return false;
  const code = field(err, 'code');
  const errno = field(err, 'errno');
  if (typeof code === 'string' && (PG_TRANSIENT_STATES.has(code) || CONNECTION_CODES.has(code))) return true;
  if (typeof errno === 'number' && MYSQL_TRANSIENT_ERRNOS.has(errno)) return true;
  if (field(err, 'fatal') === true) return true; // mysql2: the connection is unusable
  const message = field(err, 'message');
  if (typeof message === 'string' && PG_CONNECTION_MESSAGES.some((re) => re.test(message))) return true;
  return isTransientDatabaseError(field(err, 'cause'), depth + 1);
}

/** The database or the disk under it is full: PostgreSQL 53100, MySQL 1021/1114, SQLite SQLITE_FULL, ENOSPC. */
export function isNoSpaceDatabaseError(err: unknown, depth = 0): boolean {
  if (typeof err !== 'object' || err === null || depth > 4) return false;
  const code = field(err, 'code');
  const errno = field(err, 'errno');
  if (code === '53100' || code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') return true;
  if (errno === 1021 || errno === 1114) return true;
  return isNoSpaceDatabaseError(field(err, 'cause'), depth + 1);
}
