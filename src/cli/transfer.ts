/**
 * `xporta transfer OLD NEW --from-password-file F --to-password-file G [--move]`: copies an
 * account between two other XMPP servers over the client protocol (and, with --move, completes a
 * XEP-0283 move), the same service as `POST /v1/transfers/xmpp`. The passwords are read from
 * files (arguments show in `ps`) and used for these sessions only; the report is printed as JSON.
 */
import { auditCli, auditFailed } from './commands.js';
import { UsageError } from './exit-codes.js';
import { readPassword } from './pull.js';
import type { Config } from '../config/config.js';
import { transferRemote, type RemoteTransferReport } from '../core/remote-transfer.js';
import { selectKinds } from '../transfer/account-transfer.js';

export interface TransferArgs {
  readonly from: string | undefined;
  readonly to: string | undefined;
  readonly fromPasswordFile: string | undefined;
  readonly toPasswordFile: string | undefined;
  readonly move?: boolean;
  readonly caFile?: string;
  readonly allowPlaintext?: boolean;
  readonly include?: string;
  readonly exclude?: string;
}

export async function runTransfer(config: Config, args: TransferArgs): Promise<RemoteTransferReport> {
  if (args.from === undefined || args.to === undefined) throw new UsageError('two JIDs are required: the old account and the new one');
  if (args.fromPasswordFile === undefined || args.toPasswordFile === undefined) throw new UsageError('--from-password-file and --to-password-file are required');
  const kinds = selectKinds(args.include, args.exclude);
  const xmppClient = {
    ...config.xmppClient,
    ...(args.caFile !== undefined ? { caFile: args.caFile } : {}),
    ...(args.allowPlaintext ? { allowPlaintext: true } : {}),
  };
  const audited = { action: 'remote-transfer' as const, account: args.from, target: args.to, kinds: [...kinds], mode: args.move ? 'move' : 'copy' };
  try {
    const report = await transferRemote(
      { outgoing: config.outgoing, xmppClient },
      {
        from: { jid: args.from, password: readPassword(args.fromPasswordFile) },
        to: { jid: args.to, password: readPassword(args.toPasswordFile) },
        include: kinds,
        move: args.move === true,
      },
    );
    auditCli(config, { ...audited, account: report.from, target: report.to, outcome: 'ok', counts: { ...report.written } });
    return report;
  } catch (err) {
    auditFailed(config, audited, err);
    throw err;
  }
}
