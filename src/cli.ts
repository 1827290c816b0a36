#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * `xporta serve | export | import | pull | token | config` — the same code paths as the HTTP API, from a shell.
 *
 * The launcher line caps V8's young generation at 2 MB a semi-space (`npm start` and the
 * Dockerfile do the same): with the default 16 MB, a million-message import peaks at 172 MB RSS
 * instead of 145 MB, at some cost in time (see the README's Benchmark section).
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  runExport,
  runImport,
  runOperatorToken,
  runOperatorTokenEntry,
  runTokenList,
  runTokenRevoke,
  runTokenRotate,
  runUserToken,
  UsageError,
} from './cli/commands.js';
import { exportOutput, ProgressLine } from './cli/io.js';
import { hostImportFailed, runHostImport } from './cli/host-import.js';
import { runPull } from './cli/pull.js';
import { XmppPullError } from './storage/xmpp-client/errors.js';
import { ConfigError, loadConfig, redactedConfig, type Config } from './config/config.js';
import { JidError } from './lib/jid.js';
import { StorageError } from './storage/backend.js';
import { JOBS_FILE, JobStore } from './core/job-store.js';
import { TransferError } from './transfer/account-transfer.js';
import { Xep0227Error } from './xep0227/errors.js';

const USAGE = `usage: xporta <command> [options] [--config FILE]

commands:
  serve                               run the HTTP service (the default)
  export JID [--include K,…] [--exclude K,…] [--output FILE] [--gzip]
                                      write the account's XEP-0227 document to standard output
  export --host HOST                  every account of a host
  import JID FILE|- [--mode replace|merge] [--dry-run] [--create-account] [--include K,…]
                                      apply a document (gzip recognised by content; - reads standard input);
                                      prints the report as JSON. Into another JID than the
                                      document's, subscriptions are not claimed for the new JID
                                      (report: contactsToAsk) unless --keep-subscriptions
  import --host FILE|- [HOST] [--mode merge|replace] [--dry-run] [--create-account] [--include K,…]
                                      every account of a document with any number of users:
                                      xporta's export --host, ejabberd's export_piefxis main file
                                      (XIncluded host files are read from FILE's directory) or
                                      export_piefxis_host file (a <host> root); HOST imports only
                                      that host. The whole document is validated first, then each
                                      account is applied on its own; exit 65 if any account failed
  token JID [--scopes export,import] [--ttl SECONDS]
                                      mint a short-lived user token (needs auth.userTokenSecret)
  token --operator [--name NAME] [--scopes export,import,admin] [--hosts H,…|*]
                                      make an operator token in the token store (works at once);
                                      with --print-entry, print a config-file entry instead
  token list                          operator tokens (config file and token store), no values
  token revoke ID | token rotate ID   revoke a token-store token, or give it a new value
  pull JID --password-file F [--ca-file F] [--server HOST:PORT[/tls]] [--allow-plaintext] [--include K,…]
                                      log in to a remote account as its user and write it as a
                                      XEP-0227 document to standard output (archive included)
  jobs list | jobs show ID | jobs cancel ID
                                      background jobs of the service (kept in dataDir); cancel
                                      asks a running job to stop between accounts
  config --check                      validate the configuration, print it with secrets redacted

Every command takes --help. On a terminal, export and import show a progress line on standard
error (--quiet hides it). Exit codes follow sysexits.h: 64 usage, 65 bad data, 66 no input file,
67 no such account, 69 storage unavailable, 70 internal error, 73 cannot create the output, 74
I/O error, 75 account busy (another import or export holds it; try again), 78 configuration.

Data kinds: credentials, roster, vcard, private, pep, archive, offline, blocklist, privacy, other.
The configuration file may also be given as XPORTA_CONFIG; XPORTA_* variables override fields
(XPORTA_LISTEN__PORT=8080 sets listen.port). See config.example.json.`;

/** sysexits.h: supervisors and scripts tell a bad configuration or bad data from a crash. */
const EXIT_USAGE = 64;
const EXIT_DATAERR = 65;
const EXIT_NOINPUT = 66;
const EXIT_NOUSER = 67;
const EXIT_UNAVAILABLE = 69;
const EXIT_SOFTWARE = 70;
const EXIT_CANTCREAT = 73;
const EXIT_IOERR = 74;
const EXIT_TEMPFAIL = 75;
const EXIT_NOPERM = 77;
const EXIT_CONFIG = 78;

const KINDS_HELP = `Data kinds (--include, --exclude): credentials, roster, vcard, private, pep, archive, offline,
blocklist, privacy, other. Common options: --config FILE (or XPORTA_CONFIG), --help.`;

/** `xporta COMMAND --help`. */
const COMMAND_HELP: Readonly<Record<string, string>> = {
  serve: `usage: xporta serve [--config FILE]

Runs the HTTP service (and the XMPP component when enabled) until SIGTERM or SIGINT, then
finishes the requests in flight within limits.shutdownTimeoutMs. SIGHUP reloads the operator
tokens, user-token keys, quota and log level.`,
  export: `usage: xporta export JID [--include K,…] [--exclude K,…] [--output FILE] [--gzip] [--quiet]
       xporta export --host HOST [same options]

Writes the account's (or with --host, every account's of HOST) XEP-0227 document to standard
output, or with --output to FILE (created 0600, under its name only once complete). --gzip
compresses it. On a terminal a progress line (records, messages, bytes, rate) goes to standard
error; --quiet hides it. Closing the reading end of a pipe (| head) ends the export quietly.

${KINDS_HELP}`,
  import: `usage: xporta import JID FILE|- [--mode replace|merge] [--dry-run] [--create-account]
                           [--keep-subscriptions] [--include K,…] [--exclude K,…] [--quiet]
       xporta import --host FILE|- [HOST] [same options]

Applies a XEP-0227 document holding one account to JID, all or nothing, and prints the report
as JSON. FILE - reads standard input; gzip is recognised by its content, whatever the name.
--mode replace (default) replaces the selected kinds; merge adds to them. --dry-run checks
and reports without writing. --create-account creates JID when it does not exist. On a terminal
a progress line goes to standard error; --quiet hides it. A missing FILE exits 66. Into another
JID than the document's, roster subscriptions are not claimed for the new JID (the report lists
contactsToAsk) unless --keep-subscriptions.

With --host, FILE holds any number of accounts: xporta's export --host, ejabberd's export_piefxis
main file (XIncluded host files are read from FILE's directory) or export_piefxis_host file (a
<host> root); HOST imports only that host. The whole document is validated first, then each
account is applied on its own; exit 65 if any account failed.

${KINDS_HELP}`,
  token: `usage: xporta token JID [--scopes export,import] [--ttl SECONDS]
       xporta token --operator [--name NAME] [--scopes export,import,admin] [--hosts H,…|*] [--print-entry]
       xporta token list
       xporta token revoke ID
       xporta token rotate ID

A user token for JID (needs auth.userTokenSecret), or an operator token in the token store (the
running service accepts it at once; --hosts limits it to some hosts; --print-entry prints a
config-file entry instead). The value is printed once, alone on standard output.`,
  jobs: `usage: xporta jobs list | xporta jobs show ID | xporta jobs cancel ID [--config FILE]

Background jobs the service runs (host imports with ?async=true), read from xporta-jobs.sqlite
under dataDir, as JSON. A job whose process ended before it finished shows as interrupted; each
of its accounts was applied whole or not at all. cancel asks a running job to stop: the service
sees it between accounts (the account being applied is rolled back). Exit 67 for an unknown job,
65 when it is no longer running.`,
  config: `usage: xporta config --check [--config FILE]

Validates the configuration (file and XPORTA_* variables) and prints it with secrets redacted;
exits 78 naming the first wrong field.`,
};

/** The reader of standard output went away (\`| head\`): not an error of ours. */
function isBrokenPipe(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'EPIPE';
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        check: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        host: { type: 'boolean' },
        include: { type: 'string' },
        exclude: { type: 'string' },
        mode: { type: 'string' },
        'dry-run': { type: 'boolean' },
        'create-account': { type: 'boolean' },
        'keep-subscriptions': { type: 'boolean' },
        scopes: { type: 'string' },
        ttl: { type: 'string' },
        operator: { type: 'boolean' },
        name: { type: 'string' },
        hosts: { type: 'string' },
        'print-entry': { type: 'boolean' },
        output: { type: 'string', short: 'o' },
        gzip: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        'password-file': { type: 'string' },
        'ca-file': { type: 'string' },
        server: { type: 'string' },
        'allow-plaintext': { type: 'boolean' },
      },
    });
  } catch (err) {
    process.stderr.write(`xporta: ${(err as Error).message}\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  const [command = 'serve', ...rest] = positionals;
  if (command === 'help' || values.help) {
    const topic = command === 'help' ? rest[0] : positionals.length > 0 ? command : undefined;
    const text = topic !== undefined ? COMMAND_HELP[topic] : USAGE;
    if (text === undefined) {
      process.stderr.write(`xporta: unknown command ${JSON.stringify(topic)}\n${USAGE}\n`);
      return EXIT_USAGE;
    }
    process.stdout.write(`${text}\n`);
    return 0;
  }
  if ((values.output !== undefined || values.gzip) && command !== 'export') {
    process.stderr.write(`xporta: --output and --gzip are options of export\n`);
    return EXIT_USAGE;
  }

  let config: Config;
  const load = (): Config => loadConfig(values.config !== undefined ? { configPath: values.config } : {});
  try {
    config = load();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`xporta: ${err.message}\n`);
      return EXIT_CONFIG;
    }
    throw err;
  }

  try {
    switch (command) {
      case 'serve':
        // Loaded here: the HTTP and XMPP stacks are not needed by the other commands.
        await (await import('./serve.js')).serve(config, load);
        return 0;
      case 'export': {
        let output;
        try {
          output = exportOutput({ ...(values.output !== undefined ? { file: values.output } : {}), gzip: values.gzip === true, mode: config.files.mode, stdout: process.stdout });
        } catch (err) {
          process.stderr.write(`xporta: cannot create ${values.output ?? 'the output'}: ${(err as Error).message}\n`);
          return EXIT_CANTCREAT;
        }
        const progress = ProgressLine.for(process.stderr, 'exported', values.quiet === true);
        try {
          await runExport(
            config,
            {
              target: rest[0],
              ...(values.host ? { host: true } : {}),
              ...(values.include !== undefined ? { include: values.include } : {}),
              ...(values.exclude !== undefined ? { exclude: values.exclude } : {}),
              ...(progress ? { observer: progress } : {}),
            },
            output.stream,
          );
          await output.finish();
        } catch (err) {
          output.abort();
          throw err;
        } finally {
          if (progress instanceof ProgressLine) progress.done();
        }
        return 0;
      }
      case 'import': {
        if (values.host) {
          const hostReport = await runHostImport(
            config,
            {
              file: rest[0],
              host: rest[1],
              ...(values.mode !== undefined ? { mode: values.mode } : {}),
              dryRun: values['dry-run'] === true,
              createAccount: values['create-account'] === true,
              ...(values.include !== undefined ? { include: values.include } : {}),
              ...(values.exclude !== undefined ? { exclude: values.exclude } : {}),
            },
            process.stdin,
          );
          process.stdout.write(`${JSON.stringify(hostReport, null, 2)}\n`);
          return hostImportFailed(hostReport) ? EXIT_DATAERR : 0;
        }
        const progress = ProgressLine.for(process.stderr, values['dry-run'] ? 'checked' : 'imported', values.quiet === true);
        const report = await runImport(
          config,
          {
            jid: rest[0],
            file: rest[1],
            ...(values.mode !== undefined ? { mode: values.mode } : {}),
            dryRun: values['dry-run'] === true,
            createAccount: values['create-account'] === true,
            keepSubscriptions: values['keep-subscriptions'] === true,
            ...(values.include !== undefined ? { include: values.include } : {}),
            ...(values.exclude !== undefined ? { exclude: values.exclude } : {}),
            ...(progress ? { observer: progress } : {}),
          },
          process.stdin,
        ).finally(() => {
          if (progress instanceof ProgressLine) progress.done();
        });
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return 0;
      }
      case 'token': {
        const operatorArgs = {
          ...(values.name !== undefined ? { name: values.name } : {}),
          ...(values.scopes !== undefined ? { scopes: values.scopes } : {}),
          ...(values.hosts !== undefined ? { hosts: values.hosts } : {}),
        };
        if (values.operator && values['print-entry']) {
          const { token, entry } = runOperatorTokenEntry(config, operatorArgs);
          process.stdout.write(`token (shown once): ${token}\nadd to auth.tokens:\n${JSON.stringify(entry, null, 2)}\n`);
          return 0;
        }
        if (values.operator) {
          const { token, record } = runOperatorToken(config, operatorArgs);
          // The value alone on stdout (for scripts); what it is, on stderr.
          process.stdout.write(`${token}\n`);
          process.stderr.write(`operator token ${record.id} (${record.name}; scopes ${record.scopes.join(',')}; hosts ${record.hosts.join(',')}) is in the token store; the value above is shown only now\n`);
          return 0;
        }
        if (rest[0] === 'list') {
          process.stdout.write(`${JSON.stringify(runTokenList(config), null, 2)}\n`);
          return 0;
        }
        if (rest[0] === 'revoke') {
          const revoked = runTokenRevoke(config, rest[1]);
          process.stderr.write(`revoked ${revoked.id} (${revoked.name})\n`);
          return 0;
        }
        if (rest[0] === 'rotate') {
          const { token, record } = runTokenRotate(config, rest[1]);
          process.stdout.write(`${token}\n`);
          process.stderr.write(`new value for ${record.id} (${record.name}); the old one no longer works\n`);
          return 0;
        }
        const minted = runUserToken(config, {
          jid: rest[0],
          ...(values.scopes !== undefined ? { scopes: values.scopes } : {}),
          ...(values.ttl !== undefined ? { ttlSeconds: values.ttl } : {}),
        });
        process.stdout.write(`${minted.token}\n`);
        process.stderr.write(`expires ${minted.expiresAt} (id ${minted.jti})\n`);
        return 0;
      }
      case 'pull': {
        const notes = await runPull(
          config,
          {
            jid: rest[0],
            passwordFile: values['password-file'],
            ...(values['ca-file'] !== undefined ? { caFile: values['ca-file'] } : {}),
            ...(values.server !== undefined ? { server: values.server } : {}),
            ...(values['allow-plaintext'] ? { allowPlaintext: true } : {}),
            ...(values.include !== undefined ? { include: values.include } : {}),
            ...(values.exclude !== undefined ? { exclude: values.exclude } : {}),
          },
          process.stdout,
        );
        for (const line of [...notes.warnings, ...notes.refused.map((r) => `refused by the server: ${r}`)]) process.stderr.write(`xporta: ${line}\n`);
        return 0;
      }
      case 'jobs': {
        const store = JobStore.open(join(config.dataDir, JOBS_FILE), config.files.mode);
        try {
          if (rest[0] === 'list') {
            process.stdout.write(`${JSON.stringify(store.list(), null, 2)}\n`);
            return 0;
          }
          if ((rest[0] === 'show' || rest[0] === 'cancel') && rest[1] !== undefined) {
            const job = store.get(rest[1]);
            if (!job) {
              process.stderr.write(`xporta: no job ${rest[1]}\n`);
              return EXIT_NOUSER;
            }
            if (rest[0] === 'cancel') {
              if (!store.requestCancel(job.id)) {
                process.stderr.write(`xporta: job ${job.id} is not running (${job.state})\n`);
                return EXIT_DATAERR;
              }
              process.stderr.write(`asked job ${job.id} to stop\n`);
              return 0;
            }
            process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
            return 0;
          }
          throw new UsageError('usage: xporta jobs list | jobs show ID | jobs cancel ID');
        } finally {
          store.close();
        }
      }
      case 'config':
        process.stdout.write(`${JSON.stringify(redactedConfig(config), null, 2)}\n`);
        return 0;
      default:
        process.stderr.write(`xporta: unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
        return EXIT_USAGE;
    }
  } catch (err) {
    if (isBrokenPipe(err)) return 0;
    // A raw JidError can only come from an argument: the reader reports a document's as Xep0227Error.
    if (err instanceof UsageError || err instanceof JidError || (err instanceof TransferError && err.code === 'bad-kind')) {
      process.stderr.write(`xporta: ${err.message}\n`);
      return EXIT_USAGE;
    }
    // A document whose JIDs or structure are wrong is bad data, as malformed XML is.
    if (err instanceof Xep0227Error || err instanceof TransferError) {
      process.stderr.write(`xporta: ${err.message}\n`);
      return EXIT_DATAERR;
    }
    if (err instanceof XmppPullError) {
      process.stderr.write(`xporta: ${err.message}\n`);
      return err.code === 'auth-failed' ? EXIT_NOPERM : EXIT_UNAVAILABLE;
    }
    if (err instanceof StorageError) {
      process.stderr.write(`xporta: ${err.message}\n`);
      if (err.code === 'insufficient-storage') return EXIT_IOERR;
      // Another process holds the account: trying again later may succeed.
      if (err.code === 'conflict') return EXIT_TEMPFAIL;
      return err.code === 'user-not-found' ? EXIT_NOUSER : err.code === 'unavailable' ? EXIT_UNAVAILABLE : EXIT_DATAERR;
    }
    const errno = err as NodeJS.ErrnoException;
    if ((errno.code === 'ENOENT' || errno.code === 'EACCES' || errno.code === 'EISDIR') && errno.syscall === 'open') {
      process.stderr.write(`xporta: cannot read ${errno.path ?? 'the input'}: ${errno.code}\n`);
      return errno.path !== undefined && errno.path === values.output ? EXIT_CANTCREAT : EXIT_NOINPUT;
    }
    if (errno.code === 'ENOSPC' || errno.code === 'EIO' || errno.code === 'EDQUOT') {
      process.stderr.write(`xporta: ${errno.message}\n`);
      return EXIT_IOERR;
    }
    throw err;
  }
}

// Without a listener, an EPIPE on standard output would be thrown as an uncaught error.
process.stdout.on('error', (err) => {
  if (isBrokenPipe(err)) process.exit(0);
});

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exit(code);
  },
  (err: unknown) => {
    if (isBrokenPipe(err)) process.exit(0);
    process.stderr.write(`xporta: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(EXIT_SOFTWARE);
  },
);
