/**
 * The one table from the layers' errors to HTTP problems (src/http/problem-map.ts).
 */
import { describe, expect, it } from 'vitest';
import { AuthError } from '../../src/core/auth/errors.js';
import { BusyError } from '../../src/core/errors.js';
import { MoveError } from '../../src/core/move.js';
import { JidError } from '../../src/lib/jid.js';
import { OutgoingError } from '../../src/lib/net/outgoing.js';
import { StorageError } from '../../src/storage/backend.js';
import { XmppPullError } from '../../src/storage/xmpp-client/errors.js';
import { TransferError } from '../../src/transfer/account-transfer.js';
import { Xep0227Error } from '../../src/xep0227/errors.js';
import { Problem } from '../../src/http/problem.js';
import { toProblem } from '../../src/http/problem-map.js';

function answer(err: unknown): [number, string, Record<string, string>] {
  const problem = toProblem(err);
  if (!(problem instanceof Problem)) throw new Error(`not mapped: ${String(err)}`);
  return [problem.status, problem.code, { ...problem.headers }];
}

describe('toProblem', () => {
  it('maps each layer’s errors by class and code', () => {
    expect(answer(new AuthError('unauthenticated', 'x'))[0]).toBe(401);
    expect(answer(new AuthError('invalid-token', 'x')).slice(0, 2)).toEqual([401, 'invalid-token']);
    expect(answer(new AuthError('forbidden', 'x'))[0]).toBe(403);
    expect(answer(new AuthError('invalid-request', 'x'))[0]).toBe(400);
    expect(answer(new AuthError('rate-limited', 'x', 7))).toEqual([429, 'too-many-requests', { 'retry-after': '7' }]);
    expect(answer(new AuthError('unavailable', 'x'))[0]).toBe(503);
    expect(answer(new BusyError('account', 'x'))[0]).toBe(409);
    expect(answer(new BusyError('import-slots', 'x'))).toEqual([429, 'too-many-requests', { 'retry-after': '30' }]);
    expect(answer(new TransferError('bad-kind', 'x'))[0]).toBe(400);
    expect(answer(new TransferError('bad-option', 'x'))[0]).toBe(400);
    expect(answer(new TransferError('wrong-structure', 'x'))[0]).toBe(422);
    expect(answer(new JidError('bad'))[0]).toBe(422);
    expect(answer(new Xep0227Error('malformed', 'x', 2, 3)).slice(0, 2)).toEqual([400, 'xml-malformed']);
    expect(answer(new StorageError('user-not-found', 'x'))[0]).toBe(404);
    expect(answer(new StorageError('conflict', 'x'))[0]).toBe(409);
    expect(answer(new StorageError('unavailable', 'x'))).toEqual([503, 'storage-unavailable', { 'retry-after': '5' }]);
    expect(answer(new StorageError('insufficient-storage', 'x'))[0]).toBe(507);
    expect(answer(new OutgoingError('refused', 'internal')).slice(0, 2)).toEqual([422, 'outgoing-refused']);
    expect(answer(new OutgoingError('failed', 'internal')).slice(0, 2)).toEqual([502, 'upstream-failed']);
    expect(answer(new XmppPullError('auth-failed')).slice(0, 2)).toEqual([422, 'xmpp-auth-failed']);
    expect(answer(new XmppPullError('timeout'))[0]).toBe(504);
    expect(answer(new XmppPullError('throttled')).slice(0, 2)).toEqual([502, 'xmpp-throttled']);
    expect(answer(new MoveError('upstream', 'x'))[0]).toBe(502);
    expect(answer(Object.assign(new Error('disk'), { code: 'ENOSPC' }))[0]).toBe(507);
  });

  it('leaves unknown errors for the 500 handler', () => {
    const err = new Error('bug');
    expect(toProblem(err)).toBe(err);
  });
});
