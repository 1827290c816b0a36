/**
 * The audit log: one JSON line per privileged action (export, import, dry run, host transfers,
 * import-from, moves, token mint/revoke/rotate), apart from the service log so that it can be
 * kept longer and read by other people. Each line says who (token name, or user JID and jti),
 * what, on which account or host, with which kinds, the counts, the outcome and its reason, and
 * the request id. It never carries a token, a password or key material: callers pass only the
 * fields below, and the logger redacts the usual secret-bearing keys besides.
 */
import { destination, pino, type Logger } from 'pino';
import type { Writable } from 'node:stream';
import type { Config } from '../config/config.js';
import { ensurePrivateFile } from '../lib/private-files.js';

export type AuditAction =
  | 'export'
  | 'export-file-create'
  | 'export-file-download'
  | 'export-file-delete'
  | 'import'
  | 'import-from'
  | 'import-from-xmpp'
  | 'host-export'
  | 'host-import'
  | 'move'
  | 'remote-transfer'
  | 'web-sign-in'
  | 'user-token-mint'
  | 'user-token-revoke'
  | 'user-token-list'
  | 'operator-token-create'
  | 'operator-token-list'
  | 'operator-token-revoke'
  | 'operator-token-rotate';

/** Who acted: a token name (operator), a user JID with the token's jti, an XMPP user, or the local CLI. */
export type AuditActor =
  | { readonly kind: 'operator'; readonly name: string; readonly tokenId?: string }
  | { readonly kind: 'user'; readonly jid: string; readonly jti: string }
  | { readonly kind: 'cli'; readonly user?: string }
  /** A user acting from their XMPP client (authenticated by their server) through the component. */
  | { readonly kind: 'xmpp'; readonly jid: string }
  /** An account owner signed in to the web page (src/web/) with their password or a one-time link. */
  | { readonly kind: 'web'; readonly jid: string }
  | { readonly kind: 'anonymous' };

export interface AuditEntry {
  readonly action: AuditAction;
  readonly actor: AuditActor;
  readonly outcome: 'ok' | 'accepted' | 'refused' | 'failed';
  readonly account?: string;
  readonly host?: string;
  readonly kinds?: readonly string[];
  readonly dryRun?: boolean;
  readonly mode?: string;
  readonly counts?: Readonly<Record<string, number>>;
  /** The problem type and detail of a refusal or failure. */
  readonly reason?: string;
  readonly status?: number;
  readonly requestId?: string;
  /** The token an action made or changed (its id or jti, never its value). */
  readonly target?: string;
}

export class AuditLog {
  private constructor(private readonly logger: Logger) {}

  /** The log the configuration names: a private file, or standard output (`-`). */
  static open(config: Pick<Config, 'audit' | 'files'>): AuditLog {
    if (config.audit.file === '-') return AuditLog.toStream(process.stdout);
    ensurePrivateFile(config.audit.file, config.files.mode);
    return new AuditLog(pino({ base: { audit: true }, redact: ['*.password', '*.token', '*.secret'] }, destination({ dest: config.audit.file, sync: true, append: true, mode: config.files.mode })));
  }

  /** For tests and embedding: lines go to `stream`. */
  static toStream(stream: Writable): AuditLog {
    return new AuditLog(pino({ base: { audit: true }, redact: ['*.password', '*.token', '*.secret'] }, stream));
  }

  /** Discards everything. */
  static none(): AuditLog {
    return new AuditLog(pino({ level: 'silent' }));
  }

  record(entry: AuditEntry): void {
    this.logger.info(entry, `${entry.action} ${entry.outcome}`);
  }

  flush(): void {
    this.logger.flush();
  }
}
