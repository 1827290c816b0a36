import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TokenStore } from '../../src/core/auth/token-store.js';
import { Authenticator, FailedAuthLimiter, RequestQuota, attemptedTokenId, authorize } from '../../src/core/auth/authenticator.js';
import { AuthError } from '../../src/core/auth/errors.js';
import { bearerFrom } from '../../src/http/guard.js';
import { Problem } from '../../src/http/problem.js';
import { toProblem } from '../../src/http/problem-map.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';

const SECRET = 'k'.repeat(40);

/** The core's auth errors, answered as the HTTP face answers them. */
function problemOf(fn: () => unknown): Problem {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AuthError);
    const problem = toProblem(err);
    if (problem instanceof Problem) return problem;
    throw err;
  }
  throw new Error('expected an AuthError');
}

describe('Authenticator', () => {
  const auth = new Authenticator(
    [
      { name: 'panel', sha256: sha256Hex('operator-secret'), scopes: ['export', 'import', 'admin'], hosts: ['localhost'] },
      { name: 'backup', sha256: sha256Hex('backup-secret'), scopes: ['export'], hosts: ['*'] },
    ],
    SECRET,
    3600,
  );

  it('recognises operator tokens by hash', () => {
    expect(auth.authenticate('operator-secret')).toEqual({ kind: 'operator', name: 'panel', scopes: ['export', 'import', 'admin'], hosts: ['localhost'] });
    expect(auth.authenticate('backup-secret')).toMatchObject({ name: 'backup' });
  });

  it('answers 401 with WWW-Authenticate for unknown, tampered and expired tokens', () => {
    const unknown = problemOf(() => auth.authenticate('nope'));
    expect(unknown.status).toBe(401);
    expect(unknown.headers['www-authenticate']).toMatch(/^Bearer /);

    const { token } = auth.mintUserToken({ jid: 'alice@localhost', scopes: ['export'], ttlSeconds: 60 });
    const tampered = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
    expect(problemOf(() => auth.authenticate(tampered)).detail).toBe('bad signature');

    const old = auth.mintUserToken({ jid: 'alice@localhost', scopes: ['export'], ttlSeconds: 60, now: 1000 });
    expect(problemOf(() => auth.authenticate(old.token, 2000)).detail).toBe('token expired');
  });

  it('refuses a user token signed with another key', () => {
    const other = new Authenticator([], 'o'.repeat(40), 3600);
    const { token } = other.mintUserToken({ jid: 'alice@localhost', scopes: ['export'], ttlSeconds: 60 });
    expect(problemOf(() => auth.authenticate(token)).status).toBe(401);
  });

  it('binds a user token to its JID and scopes', () => {
    const { token } = auth.mintUserToken({ jid: 'alice@localhost', scopes: ['export'], ttlSeconds: 600 });
    const principal = auth.authenticate(token);
    expect(principal).toMatchObject({ kind: 'user', jid: 'alice@localhost', scopes: ['export'] });
    expect(() => authorize(principal, 'export', 'localhost', 'alice@localhost')).not.toThrow();
    expect(problemOf(() => authorize(principal, 'export', 'localhost', 'bob@localhost')).status).toBe(403);
    expect(problemOf(() => authorize(principal, 'import', 'localhost', 'alice@localhost')).status).toBe(403);
  });

  it('limits an operator token to its hosts and scopes with 403', () => {
    const panel = auth.authenticate('operator-secret');
    expect(() => authorize(panel, 'import', 'localhost', 'alice@localhost')).not.toThrow();
    expect(problemOf(() => authorize(panel, 'import', 'example.org')).status).toBe(403);
    const backup = auth.authenticate('backup-secret');
    expect(problemOf(() => authorize(backup, 'import', 'localhost')).detail).toMatch(/import scope/);
  });

  it('consumes a single-use token on first presentation', () => {
    const { token } = auth.mintUserToken({ jid: 'alice@localhost', scopes: ['export'], ttlSeconds: 600, singleUse: true });
    expect(auth.authenticate(token)).toMatchObject({ singleUse: true });
    expect(problemOf(() => auth.authenticate(token)).detail).toBe('token already used');
  });

  it('refuses anything but the exact minted form', () => {
    const { token } = auth.mintUserToken({ jid: 'alice@localhost', scopes: ['export'], ttlSeconds: 600 });
    for (const variant of [`${token}.x`, `${token}.`, `${token} `, `${token}A`, token.replace('.', '..'), `xpu_.${token.split('.')[1] ?? ''}`]) {
      expect([variant, problemOf(() => auth.authenticate(variant)).status]).toEqual([variant, 401]);
    }
  });

  it('refuses correctly signed claims it did not mint (unknown fields or scopes)', () => {
    const sign = (claims: object): string => {
      // The same construction as mintUserToken, to prove the claim checks and not the signature refuse it.
      const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
      const inner = auth as unknown as { sign(key: Buffer, payload: string): string };
      return `xpu_${payload}.${inner.sign(Buffer.from(SECRET), payload)}`;
    };
    const exp = Math.floor(Date.now() / 1000) + 60;
    expect(auth.authenticate(sign({ sub: 'a@localhost', scp: ['export'], exp, jti: 'j1' }))).toMatchObject({ kind: 'user' });
    expect(problemOf(() => auth.authenticate(sign({ sub: 'a@localhost', scp: ['export'], exp, jti: 'j2', admin: true }))).detail).toBe('malformed token');
    expect(problemOf(() => auth.authenticate(sign({ sub: 'a@localhost', scp: ['root'], exp, jti: 'j3' }))).detail).toBe('malformed token');
  });

  it('accepts the previous key for verification, never for signing', () => {
    const old = new Authenticator([], 'o'.repeat(40), 3600);
    const { token } = old.mintUserToken({ jid: 'alice@localhost', scopes: ['export'], ttlSeconds: 60 });
    const rotated = new Authenticator([], 'n'.repeat(40), 3600, { previousSecrets: ['o'.repeat(40)] });
    expect(rotated.authenticate(token)).toMatchObject({ jid: 'alice@localhost' });
    const fresh = rotated.mintUserToken({ jid: 'alice@localhost', scopes: ['export'], ttlSeconds: 60 }).token;
    expect(problemOf(() => old.authenticate(fresh)).detail).toBe('bad signature');
  });

  it('caps the lifetime of user tokens', () => {
    expect(problemOf(() => auth.mintUserToken({ jid: 'a@b', scopes: ['export'], ttlSeconds: 3601 })).status).toBe(400);
  });
});

describe('bearerFrom', () => {
  it('extracts the token or answers 401', () => {
    expect(bearerFrom('Bearer abc.def')).toBe('abc.def');
    expect(bearerFrom('bearer  abc')).toBe('abc');
    expect(problemOf(() => bearerFrom(undefined)).status).toBe(401);
    expect(problemOf(() => bearerFrom('Basic dXNlcjpwYXNz')).status).toBe(401);
  });
});

describe('FailedAuthLimiter', () => {
  it('answers 429 with Retry-After after too many failures in a minute, per client', () => {
    const limiter = new FailedAuthLimiter(3);
    for (let i = 0; i < 3; i++) limiter.fail('10.0.0.1', 1000 + i);
    const problem = problemOf(() => limiter.check('10.0.0.1', 2000));
    expect(problem.status).toBe(429);
    expect(Number(problem.headers['retry-after'])).toBeGreaterThan(0);
    expect(() => limiter.check('10.0.0.2', 2000)).not.toThrow();
    expect(() => limiter.check('10.0.0.1', 62_000)).not.toThrow();
  });
});

describe('attemptedTokenId', () => {
  it('reads the jti of a user token without trusting it, and nothing else', () => {
    const auth = new Authenticator([], SECRET, 3600);
    const { token, claims } = auth.mintUserToken({ jid: 'a@localhost', scopes: ['export'], ttlSeconds: 60 });
    expect(attemptedTokenId(token)).toBe(claims.jti);
    expect(attemptedTokenId('xpt_operator')).toBeUndefined();
    expect(attemptedTokenId('xpu_@@.x')).toBeUndefined();
  });
});

describe('RequestQuota', () => {
  it('allows perMinute requests per key per window, then 429 with Retry-After', () => {
    const quota = new RequestQuota(2);
    quota.take('a', 0);
    quota.take('a', 1);
    const over = problemOf(() => quota.take('a', 30_000));
    expect(over.status).toBe(429);
    expect(over.headers['retry-after']).toBe('30');
    expect(() => quota.take('b', 30_000)).not.toThrow();
    expect(() => quota.take('a', 60_000)).not.toThrow();
  });

  it('does nothing when the quota is 0', () => {
    const quota = new RequestQuota(0);
    for (let i = 0; i < 100; i++) quota.take('a', i);
  });
});

describe('Authenticator with a token store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-auth-store-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the store private, and keeps consumed and revoked jtis for other instances', () => {
    const path = join(dir, 'state.sqlite');
    const store = TokenStore.open(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const a = new Authenticator([], SECRET, 3600, { store });
    const link = a.mintUserToken({ jid: 'alice@localhost', scopes: ['export'], ttlSeconds: 600, singleUse: true });
    const plain = a.mintUserToken({ jid: 'alice@localhost', scopes: ['export'], ttlSeconds: 600 });
    expect(a.authenticate(link.token)).toMatchObject({ singleUse: true });
    expect(a.revokeUserToken(plain.claims.jti)).toBe(true);
    expect(store.listUserTokens('alice@localhost').map((t) => [t.jti, t.revoked, t.consumed])).toEqual(
      expect.arrayContaining([
        [link.claims.jti, false, true],
        [plain.claims.jti, true, false],
      ]),
    );
    store.close();

    const reopened = TokenStore.open(path);
    const b = new Authenticator([], SECRET, 3600, { store: reopened });
    expect(problemOf(() => b.authenticate(link.token)).detail).toBe('token already used');
    expect(problemOf(() => b.authenticate(plain.token)).detail).toBe('token revoked');
    reopened.close();
  });

  it('forgets expired rows', () => {
    const store = TokenStore.open(join(dir, 'prune.sqlite'));
    store.consume('old', 100);
    store.revokeUserToken('old', 100);
    store.recordUserToken({ jti: 'old', jid: 'a@localhost', scopes: ['export'], expiresAt: 100, singleUse: true });
    store.prune(10_000_000_000);
    expect(store.isRevoked('old')).toBe(false);
    expect(store.consume('old', 20_000_000_000)).toBe(true);
    expect(store.userToken('old')).toBeUndefined();
    store.close();
  });
});
