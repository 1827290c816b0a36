/**
 * Checks an account owner's password against the credentials the storage holds, as the XMPP
 * server does at login: SASLprep (RFC 4013) first, then either the SCRAM stored key (RFC 5802:
 * H(HMAC(PBKDF2(password, salt, i), "Client Key"))) or the stored plain password. It works for
 * every backend, since each reads its accounts into the same model (`readAccount`). The password
 * is neither kept nor logged.
 *
 * An unknown account, a refused password and a wrong one cost the same work: one PBKDF2 run of
 * the usual iteration count and one constant-time comparison, so timing does not tell them apart.
 */
import { createHash, createHmac, pbkdf2, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { saslprep } from '../lib/saslprep.js';
import type { ScramCredentials } from '../records/model.js';
import type { StorageBackend, UserRef } from '../storage/backend.js';

const pbkdf2Async = promisify(pbkdf2);

/** The work done when there is nothing real to check against: Prosody's default SCRAM parameters. */
const DUMMY: ScramCredentials = {
  mechanism: 'SCRAM-SHA-1',
  iterationCount: 4096,
  salt: Buffer.alloc(16, 7).toString('base64'),
  storedKey: Buffer.alloc(20).toString('base64'),
  serverKey: Buffer.alloc(20).toString('base64'),
};

/** Highest iteration count accepted from storage, so a corrupt record cannot stall the service. */
const MAX_ITERATIONS = 1_000_000;

async function scramMatches(password: string, credentials: ScramCredentials): Promise<boolean> {
  const hash = credentials.mechanism === 'SCRAM-SHA-256' ? 'sha256' : 'sha1';
  const length = hash === 'sha256' ? 32 : 20;
  const iterations = Math.min(Math.max(1, credentials.iterationCount), MAX_ITERATIONS);
  const salted = await pbkdf2Async(Buffer.from(password, 'utf8'), Buffer.from(credentials.salt, 'base64'), iterations, length, hash);
  const clientKey = createHmac(hash, salted).update('Client Key').digest();
  const storedKey = createHash(hash).update(clientKey).digest();
  const expected = Buffer.from(credentials.storedKey, 'base64');
  return expected.length === storedKey.length && timingSafeEqual(storedKey, expected);
}

function plainMatches(password: string, stored: string): boolean {
  // Digests first: equal lengths for timingSafeEqual, and nothing about the stored length leaks.
  const given = createHash('sha256').update(password, 'utf8').digest();
  const expected = createHash('sha256').update(saslprep(stored) ?? stored, 'utf8').digest();
  return timingSafeEqual(given, expected);
}

/** True when `password` opens the account `ref`; false for a wrong password and for an unknown account alike. */
export async function verifyPassword(storage: StorageBackend, ref: UserRef, password: string): Promise<boolean> {
  const account = await storage.readAccount(ref);
  const prepared = saslprep(password);
  // The strongest SCRAM the account has, as a client offered both would use it.
  const scram = account?.scram.find((c) => c.mechanism === 'SCRAM-SHA-256') ?? account?.scram[0];
  if (account === null || prepared === undefined) {
    await scramMatches(password, scram ?? DUMMY);
    return false;
  }
  if (scram !== undefined) return scramMatches(prepared, scram);
  if (account.password !== undefined) {
    await scramMatches(prepared, DUMMY);
    return plainMatches(prepared, account.password);
  }
  await scramMatches(prepared, DUMMY);
  return false;
}
