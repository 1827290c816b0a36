/** Where the repository and the test fixtures are, for tests that run files or read fixtures by path. */
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
export const FIXTURES_DIR = join(REPO_ROOT, 'test', 'fixtures');
/** A support file by its path under test/support/ (a child-process entry point, say). */
export const supportFile = (name: string): string => join(REPO_ROOT, 'test', 'support', name);
