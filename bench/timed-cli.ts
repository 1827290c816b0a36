/** A CLI step of the bench run under GNU time, so wall and CPU seconds and peak RSS are the child's own. */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TimedCli {
  readonly seconds: number;
  readonly peakRssMb: number;
  /** User + system CPU seconds of the child. */
  readonly cpuSeconds: number;
  readonly ok: boolean;
  /** The end of the child's standard error, when it failed. */
  readonly detail?: string;
}

/** Runs `command` with only PATH and `env`, its standard output into `stdoutFile`, after a `sync` so earlier writes are not billed to it. */
export function timedCli(command: readonly string[], env: NodeJS.ProcessEnv, stdoutFile: string): TimedCli {
  spawnSync('sync', [], { stdio: 'ignore' });
  const timeFile = join(tmpdir(), `xporta-bench-time-${process.pid}`);
  const out = openSync(stdoutFile, 'w');
  try {
    const run = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', '-o', timeFile, ...command], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', out, 'pipe'], maxBuffer: 64 * 1024 ** 2 });
    const [seconds = NaN, kb = NaN, user = NaN, system = NaN] = readFileSync(timeFile, 'utf8').trim().split(/\s+/).slice(-4).map(Number);
    rmSync(timeFile, { force: true });
    return { seconds, peakRssMb: kb / 1024, cpuSeconds: user + system, ok: run.status === 0, ...(run.status !== 0 ? { detail: String(run.stderr).slice(-500) } : {}) };
  } finally {
    closeSync(out);
  }
}
