#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * The `xporta` executable: the CLI face (src/cli/main.ts) with `serve` handed in from the root,
 * so the service and its HTTP and XMPP faces are loaded only to serve.
 *
 * The launcher line caps V8's young generation at 2 MB a semi-space (`npm start` and the
 * Dockerfile do the same): it lowers a large import's peak memory at some cost in time (see the
 * README's Benchmark section).
 */
import { isBrokenPipe, runCli } from './cli/main.js';
import { EXIT_SOFTWARE } from './cli/exit-codes.js';

// Without a listener, an EPIPE on standard output would be thrown as an uncaught error.
process.stdout.on('error', (err) => {
  if (isBrokenPipe(err)) process.exit(0);
});

runCli(process.argv.slice(2), {
  serve: async (config, reloadConfig) => (await import('./serve.js')).serve(config, reloadConfig),
}).then(
  (code) => {
    if (code !== 0) process.exit(code);
  },
  (err: unknown) => {
    if (isBrokenPipe(err)) process.exit(0);
    process.stderr.write(`xporta: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(EXIT_SOFTWARE);
  },
);
