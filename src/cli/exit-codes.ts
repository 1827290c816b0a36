/**
 * The one table from the layers' errors to exit codes (sysexits.h), twin of the HTTP face's
 * problem map (src/http/problem-map.ts): supervisors and scripts tell a bad configuration or bad
 * data from a busy account or a crash.
 */
import { ConfigError } from '../config/config.js';
import { AuthError } from '../core/auth/errors.js';
import { BusyError, PullLimitError } from '../core/errors.js';
import { MoveError } from '../core/move-error.js';
import { XmppPullError } from '../storage/xmpp-client/errors.js';
import { JidError } from '../lib/jid.js';
import { OutgoingError } from '../lib/net/outgoing-error.js';
import { StorageError } from '../storage/backend.js';
import { TransferError } from '../transfer/account-transfer.js';
import { Xep0227Error } from '../xep0227/errors.js';

export const EXIT_USAGE = 64;
export const EXIT_DATAERR = 65;
export const EXIT_NOINPUT = 66;
export const EXIT_NOUSER = 67;
export const EXIT_UNAVAILABLE = 69;
export const EXIT_SOFTWARE = 70;
export const EXIT_CANTCREAT = 73;
export const EXIT_IOERR = 74;
export const EXIT_TEMPFAIL = 75;
export const EXIT_NOPERM = 77;
export const EXIT_CONFIG = 78;

/** A command line the CLI cannot act on: a missing or wrong argument or option. */
export class UsageError extends Error {}

export interface ExitAnswer {
  readonly code: number;
  /** The line for standard error, without the `xporta: ` prefix. */
  readonly message: string;
}

/**
 * The exit code and message for `err`, or undefined for an error no table entry knows (an
 * internal error). `outputPath` is the file an export was asked to write, so failing to open it
 * is told apart from failing to open the input.
 */
export function exitOf(err: unknown, outputPath?: string): ExitAnswer | undefined {
  const message = err instanceof Error ? err.message : String(err);
  // A raw JidError can only come from an argument: the reader reports a document's as Xep0227Error.
  if (err instanceof UsageError || err instanceof JidError) return { code: EXIT_USAGE, message };
  if (err instanceof ConfigError) return { code: EXIT_CONFIG, message };
  if (err instanceof AuthError) return { code: err.code === 'invalid-request' ? EXIT_USAGE : err.code === 'unavailable' ? EXIT_UNAVAILABLE : EXIT_NOPERM, message };
  // Another process holds the account, or every slot is taken: trying again later may succeed.
  if (err instanceof BusyError) return { code: EXIT_TEMPFAIL, message };
  if (err instanceof TransferError) return { code: err.code === 'wrong-structure' ? EXIT_DATAERR : EXIT_USAGE, message };
  // A document whose JIDs or structure are wrong is bad data, as malformed XML is.
  if (err instanceof Xep0227Error) return { code: EXIT_DATAERR, message };
  if (err instanceof XmppPullError) return { code: err.code === 'auth-failed' ? EXIT_NOPERM : EXIT_UNAVAILABLE, message };
  if (err instanceof MoveError) return { code: err.code === 'bad-request' ? EXIT_USAGE : err.code === 'not-found' ? EXIT_NOUSER : EXIT_UNAVAILABLE, message };
  // The remote archive is larger than xmppClient.maxArchiveMessages lets one pull carry.
  if (err instanceof PullLimitError) return { code: EXIT_DATAERR, message };
  if (err instanceof OutgoingError) return { code: err.reason === 'refused' ? EXIT_NOPERM : EXIT_UNAVAILABLE, message };
  if (err instanceof StorageError) return { code: STORAGE_EXIT[err.code], message };
  const errno = err as NodeJS.ErrnoException | undefined;
  if ((errno?.code === 'ENOENT' || errno?.code === 'EACCES' || errno?.code === 'EISDIR') && errno.syscall === 'open') {
    const output = errno.path !== undefined && errno.path === outputPath;
    return { code: output ? EXIT_CANTCREAT : EXIT_NOINPUT, message: `cannot read ${errno.path ?? 'the input'}: ${errno.code}` };
  }
  if (errno?.code === 'ENOSPC' || errno?.code === 'EIO' || errno?.code === 'EDQUOT') return { code: EXIT_IOERR, message };
  return undefined;
}

const STORAGE_EXIT: Readonly<Record<StorageError['code'], number>> = {
  'user-not-found': EXIT_NOUSER,
  'user-exists': EXIT_DATAERR,
  'invalid-data': EXIT_DATAERR,
  unavailable: EXIT_UNAVAILABLE,
  conflict: EXIT_TEMPFAIL,
  'insufficient-storage': EXIT_IOERR,
};
