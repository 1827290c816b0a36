/**
 * `xporta import --host FILE [HOST]`: a document with any number of users (and hosts), as
 * xporta's `export --host`, ejabberd's `export_piefxis` (main file + XIncluded host files) and
 * `export_piefxis_host` (a `<host>` root) and prosody-migrator write it.
 *
 * The host import's rule: the whole document is read and validated first, so a broken tail
 * changes nothing; then each account is applied all-or-nothing (small ones committed in groups,
 * see host-transfer.ts) and reported. The first pass keeps the events it parsed in a spool
 * (event-spool.ts), which the apply pass and each retry read instead of parsing the XML again.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { auditCli, auditFailed, cliImportServices, type CliServices } from './commands.js';
import { UsageError } from './exit-codes.js';
import type { Config } from '../config/config.js';
import { eventsOfHost, surveyDocument } from '../transfer/host-document.js';
import { importHostDocument, type HostAccountOutcome, type HostImportResult } from '../transfer/host-transfer.js';
import type { HostReportStream } from './host-report-stream.js';
import { EventSpoolWriter, readEventSpool, spoolingEvents } from '../transfer/event-spool.js';
import { HostImport } from '../core/import-pipeline.js';
import { importMode, importReaderOptions } from '../core/import-options.js';
import { normaliseDomain } from '../lib/jid.js';
import { directoryModeFor } from '../lib/private-files.js';
import { openStorage } from '../storage/open.js';
import { selectKinds, TransferError } from '../transfer/account-transfer.js';
import { readDocument } from '../xep0227/reader.js';

export interface HostImportArgs {
  /** A file path, or `-` for standard input. */
  readonly file: string | undefined;
  /** Only this host of the document; all of them when undefined. */
  readonly host?: string | undefined;
  readonly mode?: string;
  readonly dryRun?: boolean;
  readonly createAccount?: boolean;
  readonly include?: string;
  readonly exclude?: string;
}

export interface HostImportReport {
  readonly hosts: readonly HostImportResult[];
  /** Hosts of the document left out because another was asked for. */
  readonly skippedHosts: readonly string[];
}

/** True when some account failed: the CLI's exit status says so. */
export function hostImportFailed(report: HostImportReport): boolean {
  return report.hosts.some((h) => h.progress.failed > 0);
}

/**
 * With `reportTo`, each account's outcome is written there as it is final and the returned
 * report's hosts list no accounts (their counts stay in `progress`).
 */
export async function runHostImport(config: Config, args: HostImportArgs, stdin: Readable, given: CliServices = {}, reportTo?: HostReportStream): Promise<HostImportReport> {
  if (args.file === undefined) throw new UsageError('a file is required (or - for standard input)');
  const mode = importMode(args.mode, 'merge');
  const kinds = selectKinds(args.include, args.exclude);
  let only: string | undefined;
  if (args.host !== undefined) {
    only = normaliseDomain(args.host);
    if (!(only in config.hosts)) throw new UsageError(`host ${only} is not in the configuration (hosts.${only})`);
  }

  // Standard input is spooled to a private file first, as the parsed events are (event-spool.ts).
  let path = args.file;
  let spool: string | undefined;
  const spoolDir = join(config.dataDir, 'spool');
  await mkdir(spoolDir, { recursive: true, mode: directoryModeFor(config.files.mode) });
  const eventSpool = join(spoolDir, `cli-host-import-${randomUUID()}.events`);
  if (args.file === '-') {
    spool = join(spoolDir, `cli-host-import-${randomUUID()}.xml`);
    path = spool;
  }
  // XInclude (ejabberd's per-host files) only for named files, and only inside their directory.
  const readerOptions = importReaderOptions(config.limits, kinds, { from: 'file', roots: ['server-data', 'host'], ...(spool === undefined ? { includeDir: dirname(resolve(args.file)) } : {}) });
  const gzipped = spool === undefined && /\.gz$/.test(args.file);
  const open = (): Readable => {
    const raw = createReadStream(path);
    return gzipped ? raw.pipe(createGunzip()) : raw;
  };
  const audited = { action: 'host-import' as const, kinds: [...kinds], mode, dryRun: args.dryRun === true, ...(only !== undefined ? { host: only } : {}) };

  try {
    if (spool !== undefined) await pipeline(stdin, createWriteStream(spool, { mode: config.files.mode, flags: 'wx' }));
    const writer = await EventSpoolWriter.create(eventSpool, config.files.mode);
    let surveyed;
    try {
      surveyed = await surveyDocument(spoolingEvents(readDocument(open(), readerOptions), writer));
    } finally {
      await writer.close();
    }
    const chosen = only === undefined ? surveyed : surveyed.filter((h) => h.host === only);
    if (chosen.length === 0) throw new TransferError('wrong-structure', `the document has no host ${only ?? ''}`.trim());
    for (const { host } of chosen) {
      if (!(host in config.hosts)) throw new TransferError('wrong-structure', `the document's host ${host} is not in the configuration (hosts.${host}); name one host to import only that one`);
    }
    const storage = await openStorage(config);
    const hosts: HostImportResult[] = [];
    let hostImport: HostImport | undefined;
    try {
      hostImport = HostImport.begin(cliImportServices(config, storage, given));
      for (const { host, users, sizes } of chosen) {
        reportTo?.beginHost(host);
        const result = await hostImport.run({ host, dryRun: args.dryRun === true }, (gate) =>
            importHostDocument(storage, host, eventsOfHost(readEventSpool(eventSpool), host), {
              mode,
              dryRun: args.dryRun === true,
              include: kinds,
              createAccount: args.createAccount === true,
              total: users.length,
              sizes,
              users,
              lockAccount: gate.lockAccount,
              reopen: () => eventsOfHost(readEventSpool(eventSpool), host),
              ...(reportTo
                ? {
                    onOutcome: (outcome: HostAccountOutcome) => {
                      gate.outcome(outcome);
                      reportTo.user(outcome);
                    },
                  }
                : {}),
            }),
        );
        reportTo?.endHost(result.progress);
        hosts.push(result);
      }
    } finally {
      hostImport?.release();
      await storage.close();
    }
    const report = { hosts, skippedHosts: surveyed.filter((h) => !chosen.includes(h)).map((h) => h.host) };
    reportTo?.end(report.skippedHosts);
    const users = hosts.reduce((n, h) => n + h.progress.done, 0);
    const failed = hosts.reduce((n, h) => n + h.progress.failed, 0);
    auditCli(config, { ...audited, outcome: 'ok', counts: { users, failed } });
    return report;
  } catch (err) {
    auditFailed(config, audited, err);
    throw err;
  } finally {
    await rm(eventSpool, { force: true });
    if (spool !== undefined) await rm(spool, { force: true });
  }
}
