#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * `xporta serve | export | import | pull | token | config` — the same code paths as the HTTP API, from a shell.
 *
 * The launcher line caps V8's young generation at 2 MB a semi-space (`npm start` and the
 * Dockerfile do the same): with the default 16 MB, a million-message import peaks at 172 MB RSS
 * instead of 145 MB, at some cost in time (see the README's Benchmark section).
 */
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
} from './cli-commands.js';
import { runPull } from './cli-pull.js';
import { XmppPullError } from './storage/xmpp-client/errors.js';
import { ConfigError, loadConfig, redactedConfig, type Config } from './config.js';
import { JidError } from './jid.js';
import { StorageError } from './storage/backend.js';
import { TransferError } from './transfer.js';
import { Xep0227Error } from './xep0227/errors.js';

const USAGE = `usage: xporta <command> [options] [--config FILE]

commands:
  serve                               run the HTTP service (the default)
  export JID [--include K,…] [--exclude K,…]
                                      write the account's XEP-0227 document to standard output
  export --host HOST                  every account of a host
  import JID FILE|- [--mode replace|merge] [--dry-run] [--create-account] [--include K,…]
                                      apply a document (FILE may be .gz; - reads standard input);
                                      prints the report as JSON
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
  config --check                      validate the configuration, print it with secrets redacted

Data kinds: credentials, roster, vcard, private, pep, archive, offline, blocklist, privacy, other.
The configuration file may also be given as XPORTA_CONFIG; XPORTA_* variables override fields
(XPORTA_LISTEN__PORT=8080 sets listen.port). See config.example.json.`;

/** sysexits.h: supervisors and scripts tell a bad configuration or bad data from a crash. */
const EXIT_USAGE = 64;
const EXIT_DATAERR = 65;
const EXIT_NOUSER = 67;
const EXIT_UNAVAILABLE = 69;
const EXIT_NOPERM = 77;
const EXIT_CONFIG = 78;

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
        scopes: { type: 'string' },
        ttl: { type: 'string' },
        operator: { type: 'boolean' },
        name: { type: 'string' },
        hosts: { type: 'string' },
        'print-entry': { type: 'boolean' },
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
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [command = 'serve', ...rest] = positionals;

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
      case 'export':
        await runExport(
          config,
          {
            target: rest[0],
            ...(values.host ? { host: true } : {}),
            ...(values.include !== undefined ? { include: values.include } : {}),
            ...(values.exclude !== undefined ? { exclude: values.exclude } : {}),
          },
          process.stdout,
        );
        return 0;
      case 'import': {
        const report = await runImport(
          config,
          {
            jid: rest[0],
            file: rest[1],
            ...(values.mode !== undefined ? { mode: values.mode } : {}),
            dryRun: values['dry-run'] === true,
            createAccount: values['create-account'] === true,
            ...(values.include !== undefined ? { include: values.include } : {}),
            ...(values.exclude !== undefined ? { exclude: values.exclude } : {}),
          },
          process.stdin,
        );
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
      case 'config':
        process.stdout.write(`${JSON.stringify(redactedConfig(config), null, 2)}\n`);
        return 0;
      default:
        process.stderr.write(`xporta: unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
        return EXIT_USAGE;
    }
  } catch (err) {
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
      return err.code === 'user-not-found' ? EXIT_NOUSER : err.code === 'unavailable' ? EXIT_UNAVAILABLE : EXIT_DATAERR;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`xporta: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
