/**
 * What an operator token may be made with, checked the same way for the API and the CLI, so a
 * token is refused when it is asked for, not later by the config validator.
 */
import { SCOPES, type Scope } from '../../config/config.js';
import type { NewOperatorToken } from './token-store.js';

export class TokenSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenSpecError';
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function parseScopes(value: unknown): Scope[] {
  const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value;
  if (!Array.isArray(list) || list.length === 0) throw new TokenSpecError(`scopes must be a non-empty list of ${SCOPES.join(', ')}`);
  for (const s of list) {
    if (typeof s !== 'string' || !(SCOPES as readonly string[]).includes(s)) {
      throw new TokenSpecError(`unknown scope ${JSON.stringify(s)} (known: ${SCOPES.join(', ')})`);
    }
  }
  return [...new Set(list as Scope[])];
}

export function parseHosts(value: unknown, served: readonly string[]): string[] {
  const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value;
  if (!Array.isArray(list) || list.length === 0) throw new TokenSpecError('hosts must be a non-empty list of served hosts, or *');
  for (const h of list) {
    if (typeof h !== 'string' || (h !== '*' && !served.includes(h))) {
      throw new TokenSpecError(`host ${JSON.stringify(h)} is not served here (served: ${served.join(', ')}; or *)`);
    }
  }
  return [...new Set(list as string[])];
}

/** A new token's name, scopes and hosts; defaults: every scope, every host. */
export function parseOperatorTokenSpec(raw: { name?: unknown; scopes?: unknown; hosts?: unknown }, served: readonly string[]): NewOperatorToken {
  const name = raw.name ?? 'operator';
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new TokenSpecError('name must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  }
  return {
    name,
    scopes: raw.scopes === undefined ? [...SCOPES] : parseScopes(raw.scopes),
    hosts: raw.hosts === undefined ? ['*'] : parseHosts(raw.hosts, served),
  };
}
