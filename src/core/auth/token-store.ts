/**
 * xporta's own token state, in a SQLite file under dataDir (`xporta-state.sqlite`, private mode):
 * operator tokens made through the API or CLI (stored as SHA-256 hashes, the plaintext shown once),
 * user tokens minted here (for listing and revocation by jti), revoked jtis, and the jtis of
 * single-use links already consumed, each kept until its token would have expired anyway.
 *
 * Several processes may open the same file (the service and `xporta token …` from a shell): every
 * read goes to the database, so a change made by one is seen by the other at once.
 */
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import type { Scope } from '../../config/config.js';
import { generateToken, sha256Hex } from './operator-token.js';
import { DEFAULT_FILE_MODE, ensurePrivateFile, type PrivateFileMode } from '../../lib/private-files.js';

export const STATE_FILE = 'xporta-state.sqlite';

export interface StoredOperatorToken {
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly Scope[];
  readonly hosts: readonly string[];
  readonly createdAt: string;
  readonly rotatedAt?: string;
  readonly revokedAt?: string;
}

/** A stored operator token with its hash, for the authenticator only. */
export interface OperatorTokenHash extends StoredOperatorToken {
  readonly sha256: string;
}

export interface UserTokenRecord {
  readonly jti: string;
  readonly jid: string;
  readonly scopes: readonly Scope[];
  /** Unix seconds. */
  readonly expiresAt: number;
  readonly singleUse: boolean;
  readonly revoked: boolean;
  readonly consumed: boolean;
}

export interface NewOperatorToken {
  readonly name: string;
  readonly scopes: readonly Scope[];
  readonly hosts: readonly string[];
}

interface OperatorRow {
  id: string;
  name: string;
  sha256: string;
  scopes: string;
  hosts: string;
  created_at: string;
  rotated_at: string | null;
  revoked_at: string | null;
}

interface UserRow {
  jti: string;
  jid: string;
  scopes: string;
  expires_at: number;
  single_use: number;
  revoked: number;
  consumed: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS operator_tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  sha256 TEXT NOT NULL UNIQUE,
  scopes TEXT NOT NULL,
  hosts TEXT NOT NULL,
  created_at TEXT NOT NULL,
  rotated_at TEXT,
  revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS user_tokens (
  jti TEXT PRIMARY KEY,
  jid TEXT NOT NULL,
  scopes TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  single_use INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS user_tokens_jid ON user_tokens (jid);
CREATE TABLE IF NOT EXISTS revoked_jtis (
  jti TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS consumed_jtis (
  jti TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
);
`;

/** Expired rows are pruned at most this often (seconds). */
const PRUNE_EVERY_SECONDS = 60;

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function toStored(row: OperatorRow): OperatorTokenHash {
  return {
    id: row.id,
    name: row.name,
    sha256: row.sha256,
    scopes: JSON.parse(row.scopes) as Scope[],
    hosts: JSON.parse(row.hosts) as string[],
    createdAt: row.created_at,
    ...(row.rotated_at !== null ? { rotatedAt: row.rotated_at } : {}),
    ...(row.revoked_at !== null ? { revokedAt: row.revoked_at } : {}),
  };
}

function withoutHash(token: OperatorTokenHash): StoredOperatorToken {
  const { sha256: _hash, ...rest } = token;
  return rest;
}

export class TokenStore {
  private readonly db: Database.Database;
  private lastPrune = 0;

  private constructor(readonly path: string, mode: PrivateFileMode) {
    ensurePrivateFile(path, mode);
    this.db = new Database(path, { timeout: 5000 });
    // WAL: the service reads while a CLI command writes.
    this.db.pragma('journal_mode = WAL');
    this.db.exec(SCHEMA);
  }

  static open(path: string, mode: PrivateFileMode = DEFAULT_FILE_MODE): TokenStore {
    return new TokenStore(path, mode);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // --- operator tokens ------------------------------------------------------------------------

  /** A new operator token; the plaintext is returned once and only its hash is kept. */
  createOperatorToken(spec: NewOperatorToken): { token: string; record: StoredOperatorToken } {
    const token = generateToken();
    const id = randomBytes(8).toString('hex');
    const createdAt = new Date().toISOString();
    this.db
      .prepare('INSERT INTO operator_tokens (id, name, sha256, scopes, hosts, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(id, spec.name, sha256Hex(token), JSON.stringify([...new Set(spec.scopes)]), JSON.stringify([...new Set(spec.hosts)]), createdAt);
    return { token, record: { id, name: spec.name, scopes: [...new Set(spec.scopes)], hosts: [...new Set(spec.hosts)], createdAt } };
  }

  listOperatorTokens(): StoredOperatorToken[] {
    const rows = this.db.prepare('SELECT * FROM operator_tokens ORDER BY created_at, id').all() as OperatorRow[];
    return rows.map((row) => withoutHash(toStored(row)));
  }

  getOperatorToken(id: string): StoredOperatorToken | undefined {
    const row = this.db.prepare('SELECT * FROM operator_tokens WHERE id = ?').get(id) as OperatorRow | undefined;
    return row ? withoutHash(toStored(row)) : undefined;
  }

  /** Every token not revoked, with its hash: the authenticator compares all of them in constant time. */
  activeOperatorTokens(): OperatorTokenHash[] {
    const rows = this.db.prepare('SELECT * FROM operator_tokens WHERE revoked_at IS NULL').all() as OperatorRow[];
    return rows.map(toStored);
  }

  /** False when there is no such token or it was revoked already. */
  revokeOperatorToken(id: string): boolean {
    return this.db.prepare('UPDATE operator_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(new Date().toISOString(), id).changes === 1;
  }

  /** A new secret for the same id, name, scopes and hosts; the old secret stops working at once. */
  rotateOperatorToken(id: string): { token: string; record: StoredOperatorToken } | undefined {
    const token = generateToken();
    const changed = this.db
      .prepare('UPDATE operator_tokens SET sha256 = ?, rotated_at = ? WHERE id = ? AND revoked_at IS NULL')
      .run(sha256Hex(token), new Date().toISOString(), id).changes;
    if (changed !== 1) return undefined;
    const record = this.getOperatorToken(id);
    return record ? { token, record } : undefined;
  }

  // --- user tokens ----------------------------------------------------------------------------

  recordUserToken(token: { jti: string; jid: string; scopes: readonly Scope[]; expiresAt: number; singleUse: boolean }): void {
    this.db
      .prepare('INSERT OR REPLACE INTO user_tokens (jti, jid, scopes, expires_at, single_use) VALUES (?, ?, ?, ?, ?)')
      .run(token.jti, token.jid, JSON.stringify(token.scopes), token.expiresAt, token.singleUse ? 1 : 0);
    this.maybePrune();
  }

  /** User tokens minted here for one account and not yet expired. */
  listUserTokens(jid: string, now = nowSeconds()): UserTokenRecord[] {
    const rows = this.db
      .prepare(
        `SELECT u.*, (r.jti IS NOT NULL) AS revoked, (c.jti IS NOT NULL) AS consumed FROM user_tokens u
         LEFT JOIN revoked_jtis r ON r.jti = u.jti LEFT JOIN consumed_jtis c ON c.jti = u.jti
         WHERE u.jid = ? AND u.expires_at > ? ORDER BY u.expires_at, u.jti`,
      )
      .all(jid, now) as UserRow[];
    return rows.map((row) => ({
      jti: row.jti,
      jid: row.jid,
      scopes: JSON.parse(row.scopes) as Scope[],
      expiresAt: row.expires_at,
      singleUse: row.single_use === 1,
      revoked: row.revoked === 1,
      consumed: row.consumed === 1,
    }));
  }

  userToken(jti: string): { jid: string; expiresAt: number } | undefined {
    const row = this.db.prepare('SELECT jid, expires_at FROM user_tokens WHERE jti = ?').get(jti) as { jid: string; expires_at: number } | undefined;
    return row ? { jid: row.jid, expiresAt: row.expires_at } : undefined;
  }

  /**
   * Revokes a jti until `expiresAt` (after which the token is refused as expired anyway).
   * False when it was revoked already.
   */
  revokeUserToken(jti: string, expiresAt: number): boolean {
    return this.db.prepare('INSERT OR IGNORE INTO revoked_jtis (jti, expires_at) VALUES (?, ?)').run(jti, expiresAt).changes === 1;
  }

  isRevoked(jti: string): boolean {
    return this.db.prepare('SELECT 1 FROM revoked_jtis WHERE jti = ?').get(jti) !== undefined;
  }

  /** Marks a single-use jti consumed; false when it already was (by this or another process). */
  consume(jti: string, expiresAt: number): boolean {
    this.maybePrune();
    return this.db.prepare('INSERT OR IGNORE INTO consumed_jtis (jti, expires_at) VALUES (?, ?)').run(jti, expiresAt).changes === 1;
  }

  private maybePrune(): void {
    const now = nowSeconds();
    if (now - this.lastPrune < PRUNE_EVERY_SECONDS) return;
    this.lastPrune = now;
    this.prune(now);
  }

  /** Drops rows of tokens that have expired: they are refused for their expiry alone. */
  prune(now = nowSeconds()): void {
    for (const table of ['user_tokens', 'revoked_jtis', 'consumed_jtis']) {
      this.db.prepare(`DELETE FROM ${table} WHERE expires_at <= ?`).run(now);
    }
  }
}
