/**
 * The CLI's pulls from another XMPP server, both through the core (src/core/pull-import.ts):
 *
 * - `xporta pull JID --password-file F`: reads a remote account over the client protocol and
 *   writes it to standard output as a XEP-0227 document, streaming.
 * - `xporta import LOCAL-JID --from-xmpp OLD-JID --password-file F`: pulls the old account and
 *   imports it into the local one in one transaction (all or nothing).
 *
 * The password is read from a file (never an argument: those show in `ps`) and used for this
 * session only: it is not written to the audit line, the report or an error.
 */
import { readFileSync } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UsageError } from './exit-codes.js';
import { auditFailed, auditImported, cliImportServices, type CliServices } from './commands.js';
import type { Config } from '../config/config.js';
import { importMode } from '../core/import-options.js';
import { Slots } from '../core/locks.js';
import { beginPull, pullableKinds, pullImport, type PullImportProgress, type PullImportReport, type PullNotes, type PullServices } from '../core/pull-import.js';
import { bareJid } from '../lib/jid.js';
import { openStorage } from '../storage/open.js';
import { refOf, selectKinds } from '../transfer/account-transfer.js';
import { writeDocument } from '../xep0227/writer.js';

/** How to reach the remote server, besides the configuration's `xmppClient`. */
export interface RemoteArgs {
  readonly passwordFile: string | undefined;
  readonly caFile?: string;
  /** `host:port` or `host:port/tls`, instead of the DNS SRV lookup. */
  readonly server?: string;
  readonly allowPlaintext?: boolean;
  readonly include?: string;
  readonly exclude?: string;
}

export interface PullArgs extends RemoteArgs {
  readonly jid: string | undefined;
}

/** The password file's content without its final line break. */
export function readPassword(path: string | undefined): string {
  if (path === undefined) throw new UsageError('--password-file is required');
  const text = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  if (text === '') throw new UsageError(`the password file ${path} is empty`);
  return text;
}

function remoteJid(raw: string | undefined, what: string): string {
  if (raw === undefined) throw new UsageError(`${what} is required, e.g. old@example.org`);
  const jid = bareJid(raw);
  if (!jid.includes('@')) throw new UsageError(`${raw} is not a user JID`);
  return jid;
}

/** The pull's services for one CLI run: the configuration with the command line's overrides, one pull at a time. */
function pullServices(config: Config, jid: string, args: RemoteArgs): PullServices {
  const domain = jid.slice(jid.indexOf('@') + 1);
  if (args.server !== undefined && !/^(\[[^\]]+\]|[^:\s/]+):\d{1,5}(\/tls)?$/.test(args.server)) throw new UsageError('--server must be host:port or host:port/tls');
  const xmppClient = {
    ...config.xmppClient,
    ...(args.caFile !== undefined ? { caFile: args.caFile } : {}),
    ...(args.allowPlaintext ? { allowPlaintext: true } : {}),
    ...(args.server !== undefined ? { services: [`${domain}=${args.server}`] } : {}),
  };
  return { config: { outgoing: config.outgoing, xmppClient }, pullSlots: new Slots(1) };
}

export async function runPull(config: Config, args: PullArgs, out: Writable): Promise<PullNotes> {
  const jid = remoteJid(args.jid, 'a JID');
  const services = pullServices(config, jid, args);
  const password = readPassword(args.passwordFile);
  const pull = beginPull(services, { jid, password, include: selectKinds(args.include, args.exclude) });
  try {
    await pipeline(Readable.from(writeDocument(pull.events)), out, { end: false });
  } finally {
    pull.release();
  }
  return pull.notes;
}

export interface PullImportArgs extends RemoteArgs {
  /** The local account. */
  readonly jid: string | undefined;
  /** The old account, on the other server. */
  readonly from: string | undefined;
  readonly mode?: string;
  readonly dryRun?: boolean;
  readonly createAccount?: boolean;
  /** Told after each record read. */
  readonly onProgress?: (progress: PullImportProgress) => void;
}

export async function runPullImport(config: Config, args: PullImportArgs, given: CliServices = {}): Promise<PullImportReport> {
  const jid = remoteJid(args.jid, 'the local account');
  if (!(refOf(jid).host in config.hosts)) throw new UsageError(`host ${refOf(jid).host} is not in the configuration (hosts.${refOf(jid).host})`);
  const from = remoteJid(args.from, '--from-xmpp');
  const services = pullServices(config, from, args);
  const password = readPassword(args.passwordFile);
  const mode = importMode(args.mode, 'replace');
  const kinds = pullableKinds(selectKinds(args.include, args.exclude));
  const dryRun = args.dryRun === true;
  const audited = { action: 'import' as const, account: jid, kinds: [...kinds], mode, dryRun, target: from };
  const storage = await openStorage(config);
  try {
    const report = await pullImport(
      { ...cliImportServices(config, storage, given), ...services, config: { ...config, xmppClient: services.config.xmppClient } },
      {
        jid,
        from: { jid: from, password },
        options: { mode, dryRun, include: kinds, createAccount: args.createAccount === true },
        source: 'cli',
        createHint: 'use --create-account to create it',
        ...(args.onProgress ? { onProgress: args.onProgress } : {}),
      },
    );
    auditImported(config, audited, report);
    return report;
  } catch (err) {
    auditFailed(config, audited, err);
    throw err;
  } finally {
    await storage.close();
  }
}
