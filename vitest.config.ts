import { defineConfig } from 'vitest/config';

/**
 * Three projects, told apart by file name in one tree under test/ that mirrors src/:
 * - unit (`*.test.ts`): no server, database or xporta child process; runs in seconds.
 * - live (`*.live.test.ts`): starts real Prosody, ejabberd, PostgreSQL, MariaDB, or xporta in a
 *   child process.
 * - scale (`*.scale.test.ts`): millions of rows, minutes each; `npm test` runs it only under CI.
 * `npm run test:unit`, `test:live` and `test:scale` run one project each (scripts/run-tests.mjs).
 */
export default defineConfig({
  test: {
    reporters: ['default', ['json', { outputFile: '.tmp/vitest-report.json' }]],
    // One file at a time by default: live suites start servers on free ports and measure time and
    // memory. The unit project is run with three workers sharing their module cache
    // (scripts/run-tests.mjs, UNIT_ARGS): its files touch no shared server and keep no module state
    // between files.
    fileParallelism: false,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['**/node_modules/**', 'test/**/*.live.test.ts', 'test/**/*.scale.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'live',
          include: ['test/**/*.live.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'scale',
          include: ['test/**/*.scale.test.ts'],
          testTimeout: 1_800_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
