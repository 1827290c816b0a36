/**
 * SASL client mechanisms: SCRAM-SHA-256 and SCRAM-SHA-1 (RFC 5802, 7677), with channel binding
 * (the -PLUS variants, gs2 flag `p`) where the server offers it, and PLAIN (RFC 4616) for
 * TLS-protected streams only. The user name and password are sent as UTF-8, the password
 * SASLprep'd (RFC 4013), so non-ASCII names log in as they do with native clients.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { saslprep } from '../../lib/saslprep.js';
import type { ChannelBindingType } from './channel-binding.js';

export type SaslMechanismName = 'SCRAM-SHA-256-PLUS' | 'SCRAM-SHA-1-PLUS' | 'SCRAM-SHA-256' | 'SCRAM-SHA-1' | 'PLAIN';

/**
 * The gs2 channel-binding flag (RFC 5802 §5.1): `n` the client binds nothing, `y` the client
 * could bind but the server offered no -PLUS mechanism (so a server that does support binding
 * detects that a man in the middle stripped the -PLUS mechanisms), `p` binding of that type.
 */
export type Gs2Binding = { readonly flag: 'n' } | { readonly flag: 'y' } | { readonly flag: 'p'; readonly type: ChannelBindingType };

/** The mechanism to use and its gs2 flag. */
export interface SaslChoice {
  readonly mechanism: SaslMechanismName;
  readonly binding: Gs2Binding;
}

/** One SASL exchange: `initial()` is sent with <auth>, `challenge()` answers each <challenge>. */
export interface SaslExchange {
  readonly mechanism: SaslMechanismName;
  initial(): Buffer;
  challenge(data: Buffer): Buffer;
  /** Checks the <success> data (SCRAM's server signature); throws when it does not verify. */
  success(data: Buffer): void;
}

/** What the TLS layer of the stream allows: nothing on a plaintext stream. */
export interface BindingContext {
  /** The binding types the client can compute on this connection, in order of preference. */
  readonly computable: readonly ChannelBindingType[];
  /** The types the server lists in XEP-0440 `<sasl-channel-binding/>`; undefined when it lists none. */
  readonly advertised?: readonly string[];
  /** The negotiated protocol, as Node names it (`TLSv1.3`, `TLSv1.2`). */
  readonly protocol: string;
}

/**
 * The binding type for a server that offers -PLUS. With a XEP-0440 list: the first type of
 * ours it lists. Without one: RFC 5802's default `tls-unique` below TLS 1.3. On TLS 1.3 without a
 * list none: RFC 9266 makes `tls-exporter` the default there, but servers that predate it
 * (ejabberd 23.01) offer -PLUS on TLS 1.3 and check `tls-unique`, which TLS 1.3 does not
 * define, so either guess can fail a login that works without binding.
 */
export function chooseBindingType(context: BindingContext): ChannelBindingType | undefined {
  if (context.advertised) return context.computable.find((t) => context.advertised?.includes(t));
  if (context.protocol === 'TLSv1.3') return undefined;
  return context.computable.includes('tls-unique') ? 'tls-unique' : undefined;
}

/**
 * The mechanism in order of preference: -PLUS first (channel binding defeats a man in the
 * middle holding a certificate the client trusts), SHA-256 before SHA-1, PLAIN last and only
 * on an encrypted stream. `binding` is undefined on a plaintext stream: no -PLUS there, ever.
 */
export function chooseSasl(offered: readonly string[], encrypted: boolean, binding?: BindingContext): SaslChoice | undefined {
  const context = encrypted ? binding : undefined;
  const type = context ? chooseBindingType(context) : undefined;
  if (type) {
    const plus = (['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS'] as const).find((m) => offered.includes(m));
    if (plus) return { mechanism: plus, binding: { flag: 'p', type } };
  }
  const plain: SaslMechanismName[] = encrypted ? ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] : ['SCRAM-SHA-256', 'SCRAM-SHA-1'];
  const mechanism = plain.find((m) => offered.includes(m));
  if (!mechanism) return undefined;
  const offersPlus = offered.some((m) => m.startsWith('SCRAM-') && m.endsWith('-PLUS'));
  // `y` only when the server offered no -PLUS at all: offered but not usable by us is `n`, since
  // a server that binds rejects `y` as a downgrade.
  const canBind = (context?.computable.length ?? 0) > 0;
  return { mechanism, binding: { flag: canBind && !offersPlus ? 'y' : 'n' } };
}

/** The gs2 header (RFC 5802 §7: `gs2-cbind-flag "," [authzid] ","`); no authzid is ever sent. */
export function gs2Header(binding: Gs2Binding): string {
  return binding.flag === 'p' ? `p=${binding.type},,` : `${binding.flag},,`;
}

/** The `c=` attribute: base64 of the gs2 header, followed by the binding data for `p`. */
export function channelBindingAttribute(binding: Gs2Binding, data?: Buffer): string {
  const header = Buffer.from(gs2Header(binding), 'utf8');
  if (binding.flag !== 'p') return header.toString('base64');
  if (!data || data.length === 0) throw new SaslError(`no ${binding.type} channel binding data`);
  return Buffer.concat([header, data]).toString('base64');
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

export interface SaslOptions {
  /** The gs2 flag; `n` by default. A `p` binding needs `bindingData`. */
  readonly binding?: Gs2Binding;
  /** The channel binding data of the connection for `binding.type`. */
  readonly bindingData?: Buffer;
  /** For tests against the RFCs' examples; by default a random one is made. */
  readonly clientNonce?: string;
}

export function startSasl(mechanism: SaslMechanismName, username: string, password: string, options: SaslOptions = {}): SaslExchange {
  const clientNonce = options.clientNonce ?? randomBytes(24).toString('base64').replace(/[=,]/g, '');
  const binding: Gs2Binding = options.binding ?? { flag: 'n' };
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
  if (mechanism.endsWith('-PLUS') !== (binding.flag === 'p')) throw new SaslError(`${mechanism}: gs2 flag ${binding.flag} does not fit the mechanism`);
  const hash = mechanism.startsWith('SCRAM-SHA-256') ? 'sha256' : 'sha1';
  const keyLength = hash === 'sha256' ? 32 : 20;
  const hmac = (key: Buffer, data: string | Buffer): Buffer => createHmac(hash, key).update(data).digest();
  const header = gs2Header(binding);
  // Computed before anything is sent: missing binding data fails the login, never downgrades it.
  const cbind = channelBindingAttribute(binding, options.bindingData);
  const clientFirstBare = `n=${saslName(username)},r=${clientNonce}`;
  let expectedSignature: Buffer | undefined;
  return {
    mechanism,
    initial: () => Buffer.from(header + clientFirstBare, 'utf8'),
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
      const withoutProof = `c=${cbind},r=${nonce}`;
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
