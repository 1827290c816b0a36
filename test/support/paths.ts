/** Where the repository and the test fixtures are, for tests that run files or read fixtures by path. */
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
export const FIXTURES_DIR = join(REPO_ROOT, 'test', 'fixtures');
/** A support file by its path under test/support/ (a child-process entry point, say). */
export const supportFile = (name: string): string => join(REPO_ROOT, 'test', 'support', name);

/** Every file under `dir`, at any depth (for checks that no secret was left anywhere on disk). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}
