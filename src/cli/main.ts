/**
 * The CLI face: argument parsing and dispatch of `xporta export | import | pull | transfer | token | jobs |
 * config`, the same code paths as the HTTP API, from a shell. `serve` is the root's
 * (src/serve.ts), handed in by the entry point (src/cli.ts): no face starts another. The commands that
 * talk to other servers (`pull`, `transfer`, `import --from-xmpp`) load their modules when run, so
 * an export or import does not load the client-protocol stack and the outgoing HTTP client.
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
} from './commands.js';
import { exitOf, EXIT_CANTCREAT, EXIT_CONFIG, EXIT_DATAERR, EXIT_NOUSER, EXIT_USAGE, UsageError } from './exit-codes.js';
import { exportOutput, ProgressLine } from './io.js';
import { hostImportFailed, runHostImport } from './host-import.js';
import { HostReportStream } from './host-report-stream.js';
import { COMMAND_HELP, USAGE } from './usage.js';
import { ConfigError, loadConfig, redactedConfig, type Config } from '../config/config.js';
import { JOBS_FILE, JobStore } from '../core/job-store.js';

/** The reader of standard output went away (\`| head\`): not an error of ours. */
export function isBrokenPipe(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'EPIPE';
}

/** What only the root may start: the service, with its HTTP and XMPP faces. */
export interface RootCommands {
  serve(config: Config, reloadConfig: () => Config): Promise<void>;
}

/** Runs one command line; resolves with the exit code. An error no table entry knows is thrown (exit 70 at the root). */
export async function runCli(argv: string[], root: RootCommands): Promise<number> {
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
        'from-password-file': { type: 'string' },
        'to-password-file': { type: 'string' },
        move: { type: 'boolean' },
        'from-xmpp': { type: 'string' },
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
        await root.serve(config, load);
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
            {},
            new HostReportStream((text) => process.stdout.write(text)),
          );
          return hostImportFailed(hostReport) ? EXIT_DATAERR : 0;
        }
        if (values['from-xmpp'] !== undefined) {
          const { runPullImport } = await import('./pull.js');
          const pulled = await runPullImport(config, {
            jid: rest[0],
            from: values['from-xmpp'],
            passwordFile: values['password-file'],
            ...(values['ca-file'] !== undefined ? { caFile: values['ca-file'] } : {}),
            ...(values.server !== undefined ? { server: values.server } : {}),
            ...(values['allow-plaintext'] ? { allowPlaintext: true } : {}),
            ...(values.mode !== undefined ? { mode: values.mode } : {}),
            dryRun: values['dry-run'] === true,
            createAccount: values['create-account'] === true,
            ...(values.include !== undefined ? { include: values.include } : {}),
            ...(values.exclude !== undefined ? { exclude: values.exclude } : {}),
          });
          for (const line of pulled.refused) process.stderr.write(`xporta: refused by the server: ${line}\n`);
          process.stdout.write(`${JSON.stringify(pulled, null, 2)}\n`);
          return 0;
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
        const { runPull } = await import('./pull.js');
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
      case 'transfer': {
        const { runTransfer } = await import('./transfer.js');
        const report = await runTransfer(config, {
          from: rest[0],
          to: rest[1],
          fromPasswordFile: values['from-password-file'],
          toPasswordFile: values['to-password-file'],
          ...(values.move ? { move: true } : {}),
          ...(values['ca-file'] !== undefined ? { caFile: values['ca-file'] } : {}),
          ...(values['allow-plaintext'] ? { allowPlaintext: true } : {}),
          ...(values.include !== undefined ? { include: values.include } : {}),
          ...(values.exclude !== undefined ? { exclude: values.exclude } : {}),
        });
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
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
    const answer = exitOf(err, values.output);
    if (!answer) throw err;
    process.stderr.write(`xporta: ${answer.message}\n`);
    return answer.code;
  }
}

