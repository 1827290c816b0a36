import { describe, expect, it } from 'vitest';
import { Authenticator, FailedAuthLimiter, authorize, bearerFrom } from '../../src/http/auth.js';
import { Problem } from '../../src/http/problem.js';
import { sha256Hex } from '../../src/operator-token.js';

const SECRET = 'k'.repeat(40);

function problemOf(fn: () => unknown): Problem {
  try {
    fn();
  } catch (err) {
    if (err instanceof Problem) return err;
    throw err;
  }
  throw new Error('expected a Problem');
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
