// `npm test [-- vitest args]`: runs vitest, then prints its totals as one plain line
// ("tests: N passed, N failed, N skipped") that CI logs can be read by, whatever the outcome.
//
// Without arguments it runs the projects of vitest.config.ts one pass each: unit, then live (which
// starts servers of the default generation, Prosody 0.12 and ejabberd 23.01, plus the
// generation-specific suites of both), then the live suites that start a server without naming its
// generation once more against Prosody 13 and ejabberd 24.12, and last, when CI=true, scale.
// With arguments it runs vitest once with them, as given (`npm run test:unit` is `--project unit`).
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

const reportPath = '.tmp/vitest-report.json';

/** Live suites that start a server of the default generation; a pass of its own runs them on the current one. */
const GENERATION_NEUTRAL = [
  'test/integration/prosody-rig.live.test.ts',
  'test/integration/roundtrip-sqlite-files.live.test.ts',
  'test/integration/move-import-from.live.test.ts',
  'test/integration/cross-server-prosody-ejabberd.live.test.ts',
  'test/xmpp/component.live.test.ts',
  'test/xmpp/no-privilege.live.test.ts',
  // Issue 19's sources: Prosody 13 and ejabberd 24.12 as "the other provider".
  'test/integration/pull-xmpp.live.test.ts',
  'test/integration/pull-xmpp-prosody-kinds.live.test.ts',
  'test/integration/pull-xmpp-ejabberd.live.test.ts',
  'test/integration/pull-xmpp-throttle.live.test.ts',
];

/** The unit project's files share no server or port: three worker threads (more than the two cores, because many tests wait on timers and sockets), one module cache per worker. */
const UNIT_ARGS = ['--project', 'unit', '--fileParallelism', '--maxWorkers=3', '--minWorkers=3', '--no-isolate', '--pool=threads'];

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
const inCI = process.env.CI === 'true';
const passes =
  given.length > 0
    ? [runPass(given.length === 2 && given[0] === '--project' && given[1] === 'unit' ? UNIT_ARGS : given, {})]
    : [
        runPass(UNIT_ARGS, {}),
        runPass(['--project', 'live'], {}),
        runPass(['--project', 'live', ...GENERATION_NEUTRAL], { XPORTA_PROSODY_VERSION: '13', XPORTA_EJABBERD_VERSION: '24.12' }),
        ...(inCI ? [runPass(['--project', 'scale'], {})] : []),
      ];
const sum = (key) => passes.reduce((n, p) => n + p[key], 0);
console.log(`tests: ${sum('passed')} passed, ${sum('failed')} failed, ${sum('skipped')} skipped`);
const status = passes.some((p) => p.status !== 0 || p.total === 0) ? 1 : 0;
process.exit(status);
