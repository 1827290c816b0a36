import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyPassword } from '../../src/core/password-check.js';
import type { ScramCredentials, UserStart } from '../../src/records/model.js';
import type { StorageBackend } from '../../src/storage/backend.js';

function scram(password: string, mechanism: ScramCredentials['mechanism'], salt = 'c2FsdHNhbHQ=', iterationCount = 4096): ScramCredentials {
  const hash = mechanism === 'SCRAM-SHA-256' ? 'sha256' : 'sha1';
  const salted = pbkdf2Sync(password, Buffer.from(salt, 'base64'), iterationCount, hash === 'sha256' ? 32 : 20, hash);
  const clientKey = createHmac(hash, salted).update('Client Key').digest();
  return {
    mechanism,
    iterationCount,
    salt,
    storedKey: createHash(hash).update(clientKey).digest('base64'),
    serverKey: createHmac(hash, salted).update('Server Key').digest('base64'),
  };
}

/** Only `readAccount` is asked for: one account, `alice@localhost`. */
function storageWith(account: Partial<UserStart>): StorageBackend {
  return {
    readAccount: async (ref: { user: string; host: string }) =>
      ref.user === 'alice' && ref.host === 'localhost' ? { kind: 'user', name: 'alice', scram: [], extraAttributes: {}, ...account } : null,
  } as unknown as StorageBackend;
}

const ALICE = { user: 'alice', host: 'localhost' };

describe('verifyPassword', () => {
  it('checks a password against stored SCRAM-SHA-1 keys', async () => {
    const storage = storageWith({ scram: [scram('correct horse', 'SCRAM-SHA-1')] });
    expect(await verifyPassword(storage, ALICE, 'correct horse')).toBe(true);
    expect(await verifyPassword(storage, ALICE, 'correct horsE')).toBe(false);
    expect(await verifyPassword(storage, ALICE, '')).toBe(false);
  });

  it('prefers SCRAM-SHA-256 keys when both are stored', async () => {
    const storage = storageWith({ scram: [scram('old', 'SCRAM-SHA-1'), scram('new', 'SCRAM-SHA-256')] });
    expect(await verifyPassword(storage, ALICE, 'new')).toBe(true);
    expect(await verifyPassword(storage, ALICE, 'old')).toBe(false);
  });

  it('applies SASLprep first, as the server does (a no-break space is a space)', async () => {
    const storage = storageWith({ scram: [scram('pass word', 'SCRAM-SHA-256')] });
    expect(await verifyPassword(storage, ALICE, 'pass\u00a0word')).toBe(true);
  });

  it('compares a plain stored password, and says no for an unknown account or an account without credentials', async () => {
    expect(await verifyPassword(storageWith({ password: 'plain-pw' }), ALICE, 'plain-pw')).toBe(true);
    expect(await verifyPassword(storageWith({ password: 'plain-pw' }), ALICE, 'plain-pW')).toBe(false);
    expect(await verifyPassword(storageWith({ password: 'plain-pw' }), { user: 'bob', host: 'localhost' }, 'plain-pw')).toBe(false);
    expect(await verifyPassword(storageWith({}), ALICE, '')).toBe(false);
  });
});
