/**
 * The CLI's data commands: the same transfer code as the HTTP routes, on the configured storage.
 */
import { createReadStream } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Config, Scope } from './config.js';
import { exportHostDocument } from './host-transfer.js';
import { Authenticator } from './http/auth.js';
import { bareJid, normaliseDomain } from './jid.js';
import { generateToken, sha256Hex } from './operator-token.js';
import { StorageError, type ApplyReport } from './storage/backend.js';
import { withRetries } from './retry.js';
import { openStorage } from './storage/open.js';
import { exportUserDocument, importUserDocument, refOf, selectKinds } from './transfer.js';
import { readDocument } from './xep0227/reader.js';
import { writeDocument, type InvalidCharsReplaced } from './xep0227/writer.js';

export class UsageError extends Error {}

function userJid(raw: string | undefined): string {
  if (raw === undefined) throw new UsageError('a JID is required, e.g. alice@example.org');
  const jid = bareJid(raw);
  if (!jid.includes('@')) throw new UsageError(`${raw} is not a user JID`);
  return jid;
}

function servedHost(config: Config, host: string): void {
  if (!(host in config.hosts)) throw new UsageError(`host ${host} is not in the configuration (hosts.${host})`);
}

export interface ExportArgs {
  readonly target: string | undefined;
  readonly host?: boolean;
  readonly include?: string;
  readonly exclude?: string;
}

/** Writes the document to `out` (stdout), streaming. */
export async function runExport(config: Config, args: ExportArgs, out: Writable): Promise<void> {
  const kinds = selectKinds(args.include, args.exclude);
  const storage = await openStorage(config);
  try {
    let events;
    if (args.host) {
      if (args.target === undefined) throw new UsageError('a host is required');
      const host = normaliseDomain(args.target);
      servedHost(config, host);
      events = exportHostDocument(storage, host, kinds);
    } else {
      const jid = userJid(args.target);
      const ref = refOf(jid);
      servedHost(config, ref.host);
      events = exportUserDocument(storage, ref, kinds);
    }
    const onInvalidChars = (r: InvalidCharsReplaced): void => {
      const where = [r.user, r.kind, r.detail].filter((x) => x !== undefined).join(', ');
      process.stderr.write(`xporta: warning: U+${r.codePoint.toString(16).toUpperCase().padStart(4, '0')} cannot be carried by XML 1.0; exported as U+FFFD (${where})\n`);
    };
    await pipeline(Readable.from(writeDocument(events, { onInvalidChars })), out, { end: false });
  } finally {
    await storage.close();
  }
}

export interface ImportArgs {
  readonly jid: string | undefined;
  /** A file path, or `-` for standard input. */
  readonly file: string | undefined;
  readonly mode?: string;
  readonly dryRun?: boolean;
  readonly createAccount?: boolean;
  readonly include?: string;
  readonly exclude?: string;
}

export async function runImport(config: Config, args: ImportArgs, stdin: Readable): Promise<ApplyReport> {
  const jid = userJid(args.jid);
  const ref = refOf(jid);
  servedHost(config, ref.host);
  if (args.file === undefined) throw new UsageError('a file is required (or - for standard input)');
  const mode = args.mode ?? 'replace';
  if (mode !== 'replace' && mode !== 'merge') throw new UsageError('--mode must be replace or merge');
  const kinds = selectKinds(args.include, args.exclude);
  const file = args.file;
  const fromFile = file !== '-';
  const open = (): Readable => {
    if (!fromFile) return stdin;
    const raw = createReadStream(file);
    return /\.gz$/.test(file) ? raw.pipe(createGunzip()) : raw;
  };
  const storage = await openStorage(config);
  try {
    if (!args.createAccount && !(await storage.userExists(ref))) {
      throw new StorageError('user-not-found', `no account ${jid} (use --create-account to create it)`);
    }
    const attempt = (): Promise<ApplyReport> =>
      importUserDocument(
        storage,
        ref,
        readDocument(open(), {
          maxDepth: config.limits.maxDepth,
          maxElementBytes: config.limits.maxElementBytes,
          // XInclude (ejabberd's per-host files) only for files, and only inside their directory.
          ...(fromFile ? { allowXInclude: true, baseDir: dirname(resolve(file)) } : {}),
        }),
        { mode, dryRun: args.dryRun === true, include: kinds, createAccount: args.createAccount === true },
      );
    // A file can be read again after a transient storage failure; standard input cannot.
    return await (fromFile ? withRetries(attempt) : attempt());
  } finally {
    await storage.close();
  }
}

export interface TokenArgs {
  readonly jid: string | undefined;
  readonly scopes?: string;
  readonly ttlSeconds?: string;
}

/** A user token signed with the configured key, so the running service accepts it. */
export function runUserToken(config: Config, args: TokenArgs): { token: string; expiresAt: string } {
  if (config.auth.userTokenSecret === undefined) {
    throw new UsageError('auth.userTokenSecret (or XPORTA_AUTH__USER_TOKEN_SECRET) must be configured for the service to accept CLI-made tokens');
  }
  const jid = userJid(args.jid);
  servedHost(config, refOf(jid).host);
  const scopes = (args.scopes ?? 'export').split(',').map((s) => s.trim());
  for (const s of scopes) if (s !== 'export' && s !== 'import') throw new UsageError(`--scopes takes export and/or import, not ${s}`);
  const ttlSeconds = Number(args.ttlSeconds ?? '900');
  if (!Number.isInteger(ttlSeconds)) throw new UsageError('--ttl must be an integer number of seconds');
  const auth = new Authenticator([], config.auth.userTokenSecret, config.auth.userTokenMaxTtlSeconds);
  const { token, claims } = auth.mintUserToken({ jid, scopes: scopes as Scope[], ttlSeconds });
  return { token, expiresAt: new Date(claims.exp * 1000).toISOString() };
}

/** A new operator token and the config entry that accepts it. */
export function runOperatorToken(name: string, scopes: string | undefined): { token: string; entry: object } {
  const token = generateToken();
  return { token, entry: { name, sha256: sha256Hex(token), scopes: (scopes ?? 'export,import,admin').split(','), hosts: ['*'] } };
}
