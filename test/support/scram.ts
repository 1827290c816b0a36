/**
 * SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802 / 7677) client mechanisms for @xmpp/sasl.
 *
 * Why not the stock `sasl-scram-sha-1` that @xmpp/client 0.13 ships:
 * - its 1.4 release computes the client-final message asynchronously (WebCrypto), but
 *   @xmpp/sasl 0.13 sends `mech.response()` synchronously and so sends an *empty* <response/>
 *   for a Promise: every SCRAM login ends in <malformed-request/>;
 * - it builds strings from UTF-16 code units that @xmpp/sasl then base64-encodes as Latin-1
 *   (btoa), so a non-ASCII user name like `zoë` reaches the server as the wrong bytes.
 *
 * @xmpp/sasl passes our response through a btoa-compatible encoder and our challenge through
 * the matching decoder, so both sides of this class speak "binary strings" (one char per byte)
 * and do the UTF-8 conversion themselves.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

type HashName = 'sha1' | 'sha256';

/** The credential object @xmpp/sasl hands to mechanisms. */
export interface SaslCredentials {
  readonly username?: string | null;
  readonly password?: string | null;
  readonly authzid?: string | null;
}

/** What `saslmechanisms`' factory instantiates (`new Mech()`, then `name`, `clientFirst`, …). */
export interface SaslMechanism {
  readonly name: string;
  readonly clientFirst: boolean;
  response(credentials: SaslCredentials): string;
  challenge(challenge: string): SaslMechanism;
}

export interface SaslMechanismClass {
  new (): SaslMechanism;
  readonly prototype: SaslMechanism;
}

const toBinary = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');
const fromBinary = (s: string): string => Buffer.from(s, 'latin1').toString('utf8');

/** RFC 5802 `saslname`: only ',' and '=' need escaping. */
function saslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function parseAttributes(message: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) attrs.set(part[0] ?? '', part.slice(2));
  }
  return attrs;
}

function makeScram(hash: HashName, mechanismName: string): SaslMechanismClass {
  const keyLength = hash === 'sha1' ? 20 : 32;
  const hmac = (key: Buffer, data: string | Buffer): Buffer => createHmac(hash, key).update(data).digest();

  class Scram implements SaslMechanism {
    // saslmechanisms reads `Mechanism.prototype.name`, so these must live on the prototype.
    get name(): string {
      return mechanismName;
    }
    get clientFirst(): boolean {
      return true;
    }

    private stage: 'initial' | 'challenge' | 'final' = 'initial';
    private readonly clientNonce = randomBytes(18).toString('base64');
    private gs2Header = 'n,,';
    private clientFirstBare = '';
    private serverFirst = '';
    private expectedServerSignature: Buffer | undefined;

    challenge(challenge: string): SaslMechanism {
      const text = fromBinary(challenge);
      if (this.stage === 'final') {
        // Server-final (only if the server sends it as a challenge): check it knows the key.
        const v = parseAttributes(text).get('v');
        if (v !== undefined && this.expectedServerSignature) {
          const got = Buffer.from(v, 'base64');
          if (got.length !== this.expectedServerSignature.length || !timingSafeEqual(got, this.expectedServerSignature)) {
            throw new Error(`${mechanismName}: server signature mismatch`);
          }
        }
        return this;
      }
      this.serverFirst = text;
      return this;
    }

    response(credentials: SaslCredentials): string {
      if (this.stage === 'initial') {
        const authzid = credentials.authzid ? `a=${saslName(credentials.authzid)}` : '';
        this.gs2Header = `n,${authzid},`;
        this.clientFirstBare = `n=${saslName(credentials.username ?? '')},r=${this.clientNonce}`;
        this.stage = 'challenge';
        return toBinary(this.gs2Header + this.clientFirstBare);
      }
      if (this.stage === 'challenge') {
        const attrs = parseAttributes(this.serverFirst);
        const nonce = attrs.get('r');
        const salt = attrs.get('s');
        const iterations = Number(attrs.get('i'));
        if (attrs.has('e')) throw new Error(`${mechanismName}: server error ${attrs.get('e') ?? ''}`);
        if (!nonce || !nonce.startsWith(this.clientNonce) || !salt || !Number.isInteger(iterations) || iterations < 1) {
          throw new Error(`${mechanismName}: malformed server-first-message ${JSON.stringify(this.serverFirst)}`);
        }
        // SASLprep is skipped: test passwords are plain, and an NFC string prepares to itself.
        const salted = pbkdf2Sync(Buffer.from(credentials.password ?? '', 'utf8'), Buffer.from(salt, 'base64'), iterations, keyLength, hash);
        const clientKey = hmac(salted, 'Client Key');
        const storedKey = createHash(hash).update(clientKey).digest();
        const withoutProof = `c=${Buffer.from(this.gs2Header, 'utf8').toString('base64')},r=${nonce}`;
        const authMessage = Buffer.from(`${this.clientFirstBare},${this.serverFirst},${withoutProof}`, 'utf8');
        const signature = hmac(storedKey, authMessage);
        const proof = Buffer.alloc(clientKey.length);
        for (let i = 0; i < proof.length; i++) proof[i] = (clientKey[i] ?? 0) ^ (signature[i] ?? 0);
        this.expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage);
        this.stage = 'final';
        return toBinary(`${withoutProof},p=${proof.toString('base64')}`);
      }
      return '';
    }
  }
  return Scram;
}

export const ScramSha1: SaslMechanismClass = makeScram('sha1', 'SCRAM-SHA-1');
export const ScramSha256: SaslMechanismClass = makeScram('sha256', 'SCRAM-SHA-256');
