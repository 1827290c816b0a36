/**
 * `xporta pull JID --password-file F`: reads a remote account over the client protocol and
 * writes it to standard output as a XEP-0227 document, streaming. The password is read from a
 * file (never an argument: those show in `ps`) and used for this session only.
 */
import { readFileSync } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UsageError } from './exit-codes.js';
import type { Config } from '../config/config.js';
import { bareJid } from '../lib/jid.js';
import { parseServiceEntry, pullAccount, pullSettings, type PullNotes } from '../storage/xmpp-client/index.js';
import { selectKinds } from '../transfer/account-transfer.js';
import { writeDocument } from '../xep0227/writer.js';

export interface PullArgs {
  readonly jid: string | undefined;
  readonly passwordFile: string | undefined;
  readonly caFile?: string;
  /** `host:port` or `host:port/tls`, instead of the DNS SRV lookup. */
  readonly server?: string;
  readonly allowPlaintext?: boolean;
  readonly include?: string;
  readonly exclude?: string;
}

/** The password file's content without its final line break. */
export function readPassword(path: string): string {
  const text = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  if (text === '') throw new UsageError(`the password file ${path} is empty`);
  return text;
}

export async function runPull(config: Config, args: PullArgs, out: Writable): Promise<PullNotes> {
  if (args.jid === undefined) throw new UsageError('a JID is required, e.g. old@example.org');
  const jid = bareJid(args.jid);
  if (!jid.includes('@')) throw new UsageError(`${args.jid} is not a user JID`);
  if (args.passwordFile === undefined) throw new UsageError('--password-file is required');
  const password = readPassword(args.passwordFile);
  const kinds = selectKinds(args.include, args.exclude);
  const domain = jid.slice(jid.indexOf('@') + 1);
  const xmppClient = {
    ...config.xmppClient,
    ...(args.caFile !== undefined ? { caFile: args.caFile } : {}),
    ...(args.allowPlaintext ? { allowPlaintext: true } : {}),
    ...(args.server !== undefined ? { services: [`${domain}=${args.server}`] } : {}),
  };
  if (args.server !== undefined) {
    try {
      parseServiceEntry(`${domain}=${args.server}`);
    } catch {
      throw new UsageError('--server must be host:port or host:port/tls');
    }
  }
  const pull = pullAccount({ ...pullSettings({ outgoing: config.outgoing, xmppClient }, jid), jid, password, include: kinds });
  await pipeline(Readable.from(writeDocument(pull.events)), out, { end: false });
  return pull.notes;
}
