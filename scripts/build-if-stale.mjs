#!/usr/bin/env node
/**
 * `npm start`'s prestart: compiles TypeScript only when dist/ is missing or older than a source
 * (src/, the tsconfig files, package-lock.json), so a fresh clone still works with
 * `npm ci && npm start` while a built tree starts at once and needs no dev dependencies.
 * Exits 0 when nothing is to do; when a build is needed but TypeScript is not installed
 * (production dependencies only), says so and exits 1.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The newest modification time under `path` (a file or a directory), or 0 when absent. */
export function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/** Why `dir` needs a build, or undefined when dist/cli.js is newer than every input. */
export function staleReason(dir) {
  const built = join(dir, 'dist', 'cli.js');
  if (!existsSync(built)) return 'dist/cli.js is missing';
  const builtAt = statSync(built).mtimeMs;
  for (const input of ['src', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json']) {
    if (newestMtime(join(dir, input)) > builtAt) return `${input} changed since the last build`;
  }
  return undefined;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const reason = staleReason(root);
  if (reason === undefined) process.exit(0);
  let tsc;
  try {
    tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    process.stderr.write(`xporta: ${reason}, and TypeScript is not installed (production dependencies only): run \`npm ci && npm run build\` where the dev dependencies are\n`);
    process.exit(1);
  }
  process.stderr.write(`xporta: building (${reason})\n`);
  const build = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  process.exit(build.status ?? 1);
}
