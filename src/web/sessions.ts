/**
 * Signed-in sessions of the web page, in memory: the cookie carries a random id (32 bytes), the
 * store keeps only its SHA-256, so a dump of the process's state gives no usable cookie. A
 * session ends after `ttlSeconds` without use, on sign-out, or when the process restarts. It
 * holds what the page needs between requests: the CSRF token, one message to show next, and the
 * uploaded file waiting for the owner's confirmation (deleted when the session ends).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Scope } from '../config/config.js';
import type { AccountOverview } from '../core/account-overview.js';
import type { Spool } from '../core/spool.js';
import type { DataKind } from '../records/model.js';
import type { PullNotes } from '../core/pull-import.js';
import type { UserImportReport } from '../transfer/account-transfer.js';

export interface PendingImport {
  readonly spool: Spool;
  readonly report: UserImportReport;
  /** What the file holds, in the overview's terms. */
  readonly holds: AccountOverview;
  /** The file named a password (SCRAM keys or plain). */
  readonly hasPassword: boolean;
  readonly expiresAt: number;
  /** The kinds the document can speak for; a replace clears only these. All kinds when absent. */
  readonly kinds?: ReadonlySet<DataKind>;
  /** The other provider's address when the document was pulled from there, not uploaded. */
  readonly pulledFrom?: string;
}

/**
 * A pull from another provider running for the session: reading (the notes fill as it goes),
 * checking (the dry run of what was read), checked (the review is waiting), or failed.
 */
export interface PullTask {
  readonly source: string;
  readonly notes: PullNotes;
  state: 'reading' | 'checking' | 'checked' | 'failed';
  failure?: string;
  readonly controller: AbortController;
}

export interface Flash {
  readonly kind: 'error' | 'info';
  readonly text: string;
}

export interface Session {
  readonly jid: string;
  readonly scopes: readonly Scope[];
  readonly csrf: string;
  expiresAt: number;
  flash?: Flash;
  pending?: PendingImport;
  pull?: PullTask;
  /** The last finished import, for its summary page. */
  done?: { readonly report: UserImportReport; readonly holds: AccountOverview; readonly tookPassword: boolean; readonly pulledFrom?: string };
}

function digest(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/** A random token for cookies and forms: 32 bytes, base64url. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time equality of two tokens (false when either is missing). */
export function tokensEqual(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y) && a.length === b.length;
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly ttlSeconds: number,
    private readonly maxSessions = 10_000,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 30_000);
    this.sweeper.unref();
  }

  /** Starts a session; returns the cookie value (never stored). */
  create(jid: string, scopes: readonly Scope[]): { id: string; session: Session } {
    if (this.sessions.size >= this.maxSessions) this.sweep();
    if (this.sessions.size >= this.maxSessions) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.end(oldest);
    }
    const id = randomToken();
    const session: Session = { jid, scopes, csrf: randomToken(), expiresAt: Date.now() + this.ttlSeconds * 1000 };
    this.sessions.set(digest(id), session);
    return { id, session };
  }

  /** The live session for a cookie value, its expiry moved on; undefined when unknown or expired. */
  get(id: string | undefined, now = Date.now()): Session | undefined {
    if (id === undefined || id.length > 100) return undefined;
    const key = digest(id);
    const session = this.sessions.get(key);
    if (!session) return undefined;
    if (session.expiresAt <= now) {
      this.end(key);
      return undefined;
    }
    session.expiresAt = now + this.ttlSeconds * 1000;
    return session;
  }

  destroy(id: string | undefined): void {
    if (id !== undefined) this.end(digest(id));
  }

  /** Removes a session's waiting upload, if any. */
  static async dropPending(session: Session): Promise<void> {
    const pending = session.pending;
    session.pending = undefined;
    await pending?.spool.remove();
  }

  /** Ends expired sessions and waiting uploads past their expiry. */
  sweep(now = Date.now()): void {
    for (const [key, session] of this.sessions) {
      if (session.expiresAt <= now) this.end(key);
      else if (session.pending && session.pending.expiresAt <= now) void SessionStore.dropPending(session);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const key of [...this.sessions.keys()]) this.end(key);
  }

  private end(key: string): void {
    const session = this.sessions.get(key);
    this.sessions.delete(key);
    if (!session) return;
    session.pull?.controller.abort();
    session.pull = undefined;
    void SessionStore.dropPending(session);
  }
}
