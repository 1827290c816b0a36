import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Scale tests (millions of rows, minutes each) run with `npm run test:scale`.
    exclude: ['**/node_modules/**', 'test/**/*.scale.test.ts'],
    // Integration tests start real servers; one file at a time keeps ports and CPU predictable on 2 cores.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', ['json', { outputFile: '.tmp/vitest-report.json' }]],
  },
});
