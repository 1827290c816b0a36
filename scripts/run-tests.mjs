// `npm test [-- vitest args]`: runs vitest, then prints its totals as one plain line
// ("tests: N passed, N failed, N skipped") that CI logs can be read by, whatever the outcome.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

const reportPath = '.tmp/vitest-report.json';
rmSync(reportPath, { force: true });
const run = spawnSync('npx', ['vitest', 'run', ...process.argv.slice(2)], { stdio: 'inherit' });
let status = run.status ?? 1;
try {
  const report = JSON.parse(readFileSync(reportPath, 'utf8'));
  const skipped = report.numPendingTests + report.numTodoTests;
  console.log(`tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`);
  if (report.numTotalTests === 0) status = 1;
} catch {
  console.log('tests: no report was written');
  status = status || 1;
}
process.exit(status);
