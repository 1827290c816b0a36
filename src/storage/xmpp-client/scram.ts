/**
 * SASL client mechanisms: SCRAM-SHA-256 and SCRAM-SHA-1 (RFC 5802, 7677) without channel
 * binding (the gs2 header says `n`), and PLAIN (RFC 4616) for TLS-protected streams only. The
 * user name and password are sent as UTF-8, the password SASLprep'd (RFC 4013), so non-ASCII
 * names log in as they do with native clients.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { saslprep } from '../../lib/saslprep.js';

export type SaslMechanismName = 'SCRAM-SHA-256' | 'SCRAM-SHA-1' | 'PLAIN';

/** One SASL exchange: `initial()` is sent with <auth>, `challenge()` answers each <challenge>. */
export interface SaslExchange {
  readonly mechanism: SaslMechanismName;
  initial(): Buffer;
  challenge(data: Buffer): Buffer;
  /** Checks the <success> data (SCRAM's server signature); throws when it does not verify. */
  success(data: Buffer): void;
}

/** The mechanisms in order of preference; PLAIN only when the stream is encrypted. */
export function chooseMechanism(offered: readonly string[], encrypted: boolean): SaslMechanismName | undefined {
  const preference: SaslMechanismName[] = encrypted ? ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] : ['SCRAM-SHA-256', 'SCRAM-SHA-1'];
  return preference.find((m) => offered.includes(m));
}

export class SaslError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SaslError';
  }
}

function preparedPassword(password: string): string {
  return saslprep(password) ?? password;
}

function saslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function attributes(message: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const part of message.split(',')) if (part[1] === '=') attrs.set(part[0] ?? '', part.slice(2));
  return attrs;
}

/** `clientNonce` is for tests against the RFCs' examples; by default a random one is made. */
export function startSasl(mechanism: SaslMechanismName, username: string, password: string, clientNonce = randomBytes(24).toString('base64').replace(/[=,]/g, '')): SaslExchange {
  if (mechanism === 'PLAIN') {
    return {
      mechanism,
      initial: () => Buffer.from(`\0${username}\0${preparedPassword(password)}`, 'utf8'),
      challenge: () => {
        throw new SaslError('PLAIN: unexpected challenge');
      },
      success: () => undefined,
    };
  }
  const hash = mechanism === 'SCRAM-SHA-256' ? 'sha256' : 'sha1';
  const keyLength = hash === 'sha256' ? 32 : 20;
  const hmac = (key: Buffer, data: string | Buffer): Buffer => createHmac(hash, key).update(data).digest();
  const gs2Header = 'n,,';
  const clientFirstBare = `n=${saslName(username)},r=${clientNonce}`;
  let expectedSignature: Buffer | undefined;
  return {
    mechanism,
    initial: () => Buffer.from(gs2Header + clientFirstBare, 'utf8'),
    challenge: (data) => {
      const serverFirst = data.toString('utf8');
      const attrs = attributes(serverFirst);
      const nonce = attrs.get('r');
      const salt = attrs.get('s');
      const iterations = Number(attrs.get('i'));
      if (!nonce || !nonce.startsWith(clientNonce) || !salt || !Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) {
        throw new SaslError(`${mechanism}: malformed server-first-message`);
      }
      const salted = pbkdf2Sync(Buffer.from(preparedPassword(password), 'utf8'), Buffer.from(salt, 'base64'), iterations, keyLength, hash);
      const clientKey = hmac(salted, 'Client Key');
      const storedKey = createHash(hash).update(clientKey).digest();
      const withoutProof = `c=${Buffer.from(gs2Header, 'utf8').toString('base64')},r=${nonce}`;
      const authMessage = Buffer.from(`${clientFirstBare},${serverFirst},${withoutProof}`, 'utf8');
      const signature = hmac(storedKey, authMessage);
      const proof = Buffer.alloc(clientKey.length);
      for (let i = 0; i < proof.length; i++) proof[i] = (clientKey[i] ?? 0) ^ (signature[i] ?? 0);
      expectedSignature = hmac(hmac(salted, 'Server Key'), authMessage);
      return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
    },
    success: (data) => {
      // The server proves it knows the password's keys: otherwise anyone could answer "success".
      const v = attributes(data.toString('utf8')).get('v');
      const got = v === undefined ? Buffer.alloc(0) : Buffer.from(v, 'base64');
      if (!expectedSignature || got.length !== expectedSignature.length || !timingSafeEqual(got, expectedSignature)) {
        throw new SaslError(`${mechanism}: the server signature does not verify`);
      }
    },
  };
}
