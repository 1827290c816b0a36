/** The `users` row: credentials from the document where this host can use them. */
import { randomBytes } from 'node:crypto';
import type { UserStart } from '../../../records/model.js';
import type { ImportTarget } from './target.js';

/** How a host keeps passwords (`auth_password_format` and its SCRAM hash). */
export type PasswordHash = 'SHA-1' | 'SHA-256' | 'plain';

/**
 * Writes the account's row when credentials are selected and usable; otherwise keeps the row an
 * existing account has, or gives a new one a password nobody knows.
 */
export async function writeAccount(
  target: ImportTarget,
  account: UserStart,
  exists: boolean,
  passwordHash: PasswordHash,
  applyCredentials: boolean,
): Promise<void> {
  const { db, t, ref, jid, tally } = target;
  const wanted = passwordHash === 'plain' ? undefined : passwordHash === 'SHA-256' ? 'SCRAM-SHA-256' : 'SCRAM-SHA-1';
  const scram = account.scram.find((s) => s.mechanism === wanted);
  let values: { password: string; serverkey: string; salt: string; iterationcount: number } | undefined;
  if (applyCredentials && scram) {
    // ejabberd_auth_sql's encoding: a bare StoredKey is SHA-1, others carry their hash as a prefix.
    const storedKey = scram.mechanism === 'SCRAM-SHA-256' ? `sha256:${scram.storedKey}` : scram.storedKey;
    values = { password: storedKey, serverkey: scram.serverKey, salt: scram.salt, iterationcount: scram.iterationCount };
  } else if (applyCredentials && account.password !== undefined) {
    // ejabberd authenticates a plain row even with auth_password_format: scram.
    values = { password: account.password, serverkey: '', salt: '', iterationcount: 0 };
  }
  if (values) {
    if (exists) await t.delete(db, ref, 'users');
    await t.insert(db, ref, 'users', values);
    tally.count('credentials');
    return;
  }
  const other = account.scram.map((s) => s.mechanism).join(', ');
  if (applyCredentials) {
    tally.skip('credentials', `this host takes ${wanted ?? 'a plain password'} (or a plain password), the document has none`, other || undefined);
    tally.warnings.push(exists ? `the existing credentials were kept for ${jid}` : `password must be reset for ${jid}`);
  }
  if (!exists) {
    // The account needs some password; one nobody knows keeps it closed until it is reset.
    await t.insert(db, ref, 'users', { password: randomBytes(24).toString('base64'), serverkey: '', salt: '', iterationcount: 0 });
    if (!applyCredentials) tally.warnings.push(`password must be reset for ${jid}`);
  }
}
