#!/usr/bin/env -S node --max-semi-space-size=2 --heap-growing-percent=100
/**
 * The `xporta` executable: the CLI face (src/cli/main.ts) with `serve` handed in from the root,
 * so the service and its HTTP and XMPP faces are loaded only to serve.
 *
 * The launcher line caps V8's young generation at 2 MB a semi-space and lets the old generation
 * grow to twice what the last full collection kept before the next one (`npm start` and the
 * Dockerfile do the same). Both bound a long import's peak memory: with a small young generation,
 * short-lived objects that outlive two scavenges (a slice's events, the item being written) die in
 * the old generation, and V8's own growing factor on a machine with gigabytes of memory (up to 4)
 * lets them pile up to four times the live heap between full collections.
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
