/** The service configuration and tokens the HTTP edge tests share (test/http/edge*.test.ts). */
import { sha256Hex } from '../../src/core/auth/operator-token.js';

export const ALL = 'edge-operator-all-secret';
export const EXPORT_ONLY = 'edge-operator-export-secret';
export const PROBLEM = 'application/problem+json';

/** XPORTA_* variables for a service on a data directory of its own; `extra` overrides. */
export function envFor(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    XPORTA_DATA_DIR: dir,
    XPORTA_LOG_LEVEL: 'silent',
    XPORTA_HOSTS: JSON.stringify({ localhost: { passwordHash: 'SHA-1' }, 'example.org': { passwordHash: 'SHA-1' } }),
    XPORTA_AUTH__USER_TOKEN_SECRET: 'e'.repeat(40),
    XPORTA_AUTH__TOKENS: JSON.stringify([
      { name: 'all', sha256: sha256Hex(ALL), scopes: ['export', 'import', 'admin'], hosts: ['*'] },
      { name: 'export-only', sha256: sha256Hex(EXPORT_ONLY), scopes: ['export'], hosts: ['*'] },
    ]),
    ...extra,
  };
}

export const auth = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
export const xml = { 'content-type': 'application/xml' };
