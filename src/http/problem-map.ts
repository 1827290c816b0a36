/**
 * The one table from the layers' errors to RFC 9457 problems; its twin for exit codes is
 * src/cli/exit-codes.ts. Anything it does not know is left as it is, for the 500 handler.
 */
import { AuthError } from '../core/auth/errors.js';
import { BusyError, BUSY_RETRY_AFTER_SECONDS, PullLimitError } from '../core/errors.js';
import { MoveError } from '../core/move.js';
import { XmppPullError, type PullFailure } from '../core/pull-import.js';
import { JidError } from '../lib/jid.js';
import { OutgoingError } from '../lib/net/outgoing-error.js';
import { StorageError } from '../storage/backend.js';
import { TransferError } from '../transfer/account-transfer.js';
import { Xep0227Error } from '../xep0227/errors.js';
import { Problem, problems } from './problem.js';

/** What a 503 for a storage failure tells the client to wait before trying again. */
export const STORAGE_RETRY_AFTER_SECONDS = 5;

/** HTTP status per pull failure: the remote's fault is a bad gateway, the caller's a 4xx. */
const PULL_STATUS: Readonly<Record<PullFailure, number>> = {
  'address-refused': 422,
  'connect-failed': 502,
  'tls-unavailable': 502,
  'tls-verify-failed': 502,
  // 401 would ask the xporta client to re-authenticate to xporta: the remote login failed.
  'auth-failed': 422,
  'connection-lost': 502,
  timeout: 504,
  // The remote, not xporta, is what asks to come back later.
  throttled: 502,
  protocol: 502,
};

export function toProblem(err: unknown): unknown {
  if (err instanceof Problem) return err;
  if (err instanceof AuthError) return authProblem(err);
  if (err instanceof BusyError) {
    return err.code === 'account' ? problems.conflict(err.message) : problems.tooManyRequests(err.message, BUSY_RETRY_AFTER_SECONDS);
  }
  if (err instanceof Xep0227Error) {
    return new Problem(err.status, `xml-${err.code}`, err.status === 413 ? 'Content too large' : 'Invalid document', err.detail, {
      line: err.line,
      column: err.column,
    });
  }
  if (err instanceof JidError) return problems.unprocessable(`invalid JID in the document: ${err.reason}`);
  if (err instanceof TransferError) {
    return err.code === 'bad-kind' || err.code === 'bad-option' ? problems.badRequest(err.message) : problems.unprocessable(err.message);
  }
  if (err instanceof StorageError) return storageProblem(err);
  if (err instanceof OutgoingError) return outgoingProblem(err.reason === 'refused', err.message);
  if (err instanceof XmppPullError) return new Problem(PULL_STATUS[err.code], `xmpp-${err.code}`, 'The remote XMPP account could not be read', err.message);
  if (err instanceof PullLimitError) return new Problem(422, 'xmpp-archive-too-large', 'The remote archive is larger than one pull may carry', err.message);
  if (err instanceof MoveError) return moveProblem(err);
  if (isNoSpaceError(err)) return problems.insufficientStorage('no space left on the device that holds the spool or the store; nothing was changed');
  return err;
}

function authProblem(err: AuthError): Problem {
  switch (err.code) {
    case 'unauthenticated':
      return problems.unauthorized(err.message);
    case 'invalid-token':
      return problems.invalidToken(err.message);
    case 'forbidden':
      return problems.forbidden(err.message);
    case 'invalid-request':
      return problems.badRequest(err.message);
    case 'rate-limited':
      return problems.tooManyRequests(err.message, err.retryAfterSeconds ?? 60);
    case 'unavailable':
      return problems.unavailable(err.message);
  }
}

function storageProblem(err: StorageError): Problem {
  switch (err.code) {
    case 'user-not-found':
      return problems.notFound(err.message);
    case 'user-exists':
    case 'conflict':
      return problems.conflict(err.message);
    case 'invalid-data':
      return problems.unprocessable(err.message);
    case 'unavailable':
      return problems.storageUnavailable(err.message, STORAGE_RETRY_AFTER_SECONDS);
    case 'insufficient-storage':
      return problems.insufficientStorage(err.message);
  }
}

/** 422 when the outgoing-request policy refused the address, else 502; the text never says what answered there. */
function outgoingProblem(refused: boolean, detail: string): Problem {
  return refused
    ? new Problem(422, 'outgoing-refused', 'Refused by the outgoing-request policy', detail)
    : new Problem(502, 'upstream-failed', 'Bad gateway', detail);
}

function moveProblem(err: MoveError): Problem {
  switch (err.code) {
    case 'bad-request':
      return problems.badRequest(err.message);
    case 'not-found':
      return problems.notFound(err.message);
    case 'conflict':
      return problems.conflict(err.message);
    case 'upstream':
      return outgoingProblem(false, err.message);
    case 'refused':
      return outgoingProblem(true, err.message);
  }
}

function isNoSpaceError(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
