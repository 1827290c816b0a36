import { defineConfig } from 'vitest/config';

// The scale project: tests that move millions of rows and take minutes each (`npm run test:scale`).
export default defineConfig({
  test: {
    include: ['test/**/*.scale.test.ts'],
    fileParallelism: false,
    testTimeout: 1_800_000,
    hookTimeout: 600_000,
    reporters: ['default', ['json', { outputFile: '.tmp/vitest-report.json' }]],
  },
});
