#!/usr/bin/env node
/**
 * `xporta serve | config --check` — the same code paths as the HTTP API, from a shell.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, redactedConfig, type Config } from './config.js';
import { serve } from './serve.js';

const USAGE = `usage: xporta <command> [--config FILE]

commands:
  serve            run the HTTP service (default)
  config --check   validate the configuration and print it with secrets redacted

The configuration file may also be given as XPORTA_CONFIG; XPORTA_* variables override fields
(XPORTA_LISTEN__PORT=8080 sets listen.port). See config.example.json.`;

/** sysexits.h EX_CONFIG: supervisors tell a bad configuration from a crash. */
const EXIT_CONFIG = 78;
const EXIT_USAGE = 64;

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
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const command = positionals[0] ?? 'serve';

  let config: Config;
  try {
    config = loadConfig(values.config !== undefined ? { configPath: values.config } : {});
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`xporta: ${err.message}\n`);
      return EXIT_CONFIG;
    }
    throw err;
  }

  switch (command) {
    case 'serve':
      await serve(config);
      return 0;
    case 'config':
      process.stdout.write(`${JSON.stringify(redactedConfig(config), null, 2)}\n`);
      return 0;
    default:
      process.stderr.write(`xporta: unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
      return EXIT_USAGE;
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
