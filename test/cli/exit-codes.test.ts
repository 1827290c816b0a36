/**
 * The one table from the layers' errors to exit codes (src/cli/exit-codes.ts), twin of the
 * HTTP problem map.
 */
import { describe, expect, it } from 'vitest';
import { exitOf, UsageError } from '../../src/cli/exit-codes.js';
import { ConfigError } from '../../src/config/config.js';
import { AuthError } from '../../src/core/auth/errors.js';
import { BusyError } from '../../src/core/errors.js';
import { JidError } from '../../src/lib/jid.js';
import { StorageError } from '../../src/storage/backend.js';
import { XmppPullError } from '../../src/storage/xmpp-client/errors.js';
import { TransferError } from '../../src/transfer/account-transfer.js';
import { Xep0227Error } from '../../src/xep0227/errors.js';

const code = (err: unknown, output?: string): number | undefined => exitOf(err, output)?.code;

describe('exitOf', () => {
  it('maps each layer’s errors to sysexits', () => {
    expect(code(new UsageError('x'))).toBe(64);
    expect(code(new JidError('bad'))).toBe(64);
    expect(code(new AuthError('invalid-request', 'ttlSeconds must be between 1 and 3600'))).toBe(64);
    expect(code(new AuthError('forbidden', 'x'))).toBe(77);
    expect(code(new TransferError('bad-kind', 'x'))).toBe(64);
    expect(code(new TransferError('bad-option', 'x'))).toBe(64);
    expect(code(new TransferError('wrong-structure', 'x'))).toBe(65);
    expect(code(new Xep0227Error('malformed', 'x', 1, 1))).toBe(65);
    expect(code(new StorageError('user-not-found', 'x'))).toBe(67);
    expect(code(new StorageError('unavailable', 'x'))).toBe(69);
    expect(code(new StorageError('insufficient-storage', 'x'))).toBe(74);
    expect(code(new StorageError('conflict', 'x'))).toBe(75);
    expect(code(new BusyError('account', 'x'))).toBe(75);
    expect(code(new XmppPullError('auth-failed'))).toBe(77);
    expect(code(new XmppPullError('connect-failed'))).toBe(69);
    expect(code(new ConfigError('listen.port', 'x'))).toBe(78);
  });

  it('tells a missing input from an output that cannot be created', () => {
    const missing = Object.assign(new Error('ENOENT'), { code: 'ENOENT', syscall: 'open', path: '/nope/in.xml' });
    expect(exitOf(missing)).toEqual({ code: 66, message: 'cannot read /nope/in.xml: ENOENT' });
    expect(code(Object.assign(new Error('ENOENT'), { code: 'ENOENT', syscall: 'open', path: '/nope/out.xml' }), '/nope/out.xml')).toBe(73);
    expect(code(Object.assign(new Error('full'), { code: 'ENOSPC' }))).toBe(74);
  });

  it('leaves unknown errors to the root (exit 70)', () => {
    expect(exitOf(new Error('bug'))).toBeUndefined();
  });
});
