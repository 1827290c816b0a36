/**
 * What ships for deployment: the systemd unit passes `systemd-analyze verify`, the Dockerfile
 * keeps its contract (Node 24 LTS pinned by digest, compile in the build stage only, a health
 * check on the configured port), and `npm start` builds only a missing or stale dist/.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isCI } from './support/prosody.js';
import { REPO_ROOT } from './support/paths.js';

const root = REPO_ROOT;

describe('packaging', () => {
  it('examples/xporta.service passes systemd-analyze verify and is hardened', () => {
    const unit = join(root, 'examples', 'xporta.service');
    const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    if (verify.error) {
      if (isCI) throw new Error('systemd-analyze is needed (apt-get install systemd)');
      return;
    }
    expect(verify.stderr).toBe('');
    expect(verify.status).toBe(0);
    const text = readFileSync(unit, 'utf8');
    for (const line of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/xporta', 'User=xporta', 'CapabilityBoundingSet=', 'PrivateTmp=yes']) {
      expect(text).toContain(`\n${line}\n`);
    }
    expect(text).toMatch(/\nExecStart=\/usr\/bin\/node .*\/dist\/cli\.js serve\n/);
  });

  it('the Dockerfile runs Node 24 pinned by digest, compiles only in the build stage, and checks the configured port', () => {
    const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
    expect(text).toMatch(/^ARG NODE_IMAGE=node:24\.\d+\.\d+-bookworm-slim@sha256:[0-9a-f]{64}$/m);
    const stages = text.split(/^FROM /m).slice(1);
    expect(stages).toHaveLength(2);
    expect(stages.every((stage) => stage.startsWith('${NODE_IMAGE}'))).toBe(true);
    expect(stages[0]).toContain('npm run build');
    expect(stages[0]).toContain('npm prune --omit=dev');
    expect(stages[1]).not.toMatch(/npm (ci|install|run build)|tsc/);
    expect(stages[1]).toMatch(/^HEALTHCHECK .*\n\s+CMD .*process\.env\.XPORTA_LISTEN__PORT.*\/livez/m);
    expect(stages[1]).toContain('ENTRYPOINT ["node", "--max-semi-space-size=2", "--heap-growing-percent=100", "dist/cli.js"]');
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['node_modules', 'dist', 'data', '.git', 'test']) expect(ignored).toContain(entry);
  });

  it('prestart builds only when dist/ is missing or older than a source', async () => {
    const { staleReason } = (await import(pathToFileURL(join(root, 'scripts', 'build-if-stale.mjs')).href)) as { staleReason: (dir: string) => string | undefined };
    const dir = mkdtempSync(join(tmpdir(), 'xporta-stale-'));
    try {
      mkdirSync(join(dir, 'src'));
      writeFileSync(join(dir, 'src', 'cli.ts'), '');
      expect(staleReason(dir)).toBe('dist/cli.js is missing');
      mkdirSync(join(dir, 'dist'));
      writeFileSync(join(dir, 'dist', 'cli.js'), '');
      const past = new Date(Date.now() - 60_000);
      utimesSync(join(dir, 'src', 'cli.ts'), past, past);
      expect(staleReason(dir)).toBeUndefined();
      const future = new Date(Date.now() + 60_000);
      utimesSync(join(dir, 'src', 'cli.ts'), future, future);
      expect(staleReason(dir)).toBe('src changed since the last build');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string>; files: string[] };
    expect(pkg.scripts.prestart).toBe('node scripts/build-if-stale.mjs');
    expect(pkg.scripts.start).toMatch(/^node .*dist\/cli\.js serve$/);
    expect(pkg.files).toContain('scripts/build-if-stale.mjs');
  });
});
