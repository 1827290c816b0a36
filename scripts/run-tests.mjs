// `npm test [-- vitest args]`: runs vitest, then prints its totals as one plain line
// ("tests: N passed, N failed, N skipped") that CI logs can be read by, whatever the outcome.
//
// Without arguments it runs two passes: the whole suite (which starts servers of the default
// generation, Prosody 0.12 and ejabberd 23.01, plus the generation-specific suites of both), then
// the suites that start a server without naming its generation once more against Prosody 13 and
// ejabberd 24.12. With arguments it runs vitest once with them, as given.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

const reportPath = '.tmp/vitest-report.json';

/** Suites that start a server of the default generation; the second pass runs them on the current one. */
const GENERATION_NEUTRAL = [
  'test/integration/prosody-rig.test.ts',
  'test/integration/roundtrip-sqlite-files.test.ts',
  'test/integration/move-import-from.test.ts',
  'test/integration/cross-server-prosody-ejabberd.test.ts',
  'test/xmpp/component.test.ts',
  'test/xmpp/no-privilege.test.ts',
];

function runPass(args, env) {
  rmSync(reportPath, { force: true });
  const run = spawnSync('npx', ['vitest', 'run', ...args], { stdio: 'inherit', env: { ...process.env, ...env } });
  try {
    const report = JSON.parse(readFileSync(reportPath, 'utf8'));
    return {
      status: run.status ?? 1,
      passed: report.numPassedTests,
      failed: report.numFailedTests,
      skipped: report.numPendingTests + report.numTodoTests,
      total: report.numTotalTests,
    };
  } catch {
    console.log('tests: no report was written');
    return { status: run.status || 1, passed: 0, failed: 0, skipped: 0, total: 0 };
  }
}

const given = process.argv.slice(2);
const passes =
  given.length > 0
    ? [runPass(given, {})]
    : [
        runPass([], {}),
        runPass(GENERATION_NEUTRAL, { XPORTA_PROSODY_VERSION: '13', XPORTA_EJABBERD_VERSION: '24.12' }),
      ];
const sum = (key) => passes.reduce((n, p) => n + p[key], 0);
console.log(`tests: ${sum('passed')} passed, ${sum('failed')} failed, ${sum('skipped')} skipped`);
const status = passes.some((p) => p.status !== 0 || p.total === 0) ? 1 : 0;
process.exit(status);
