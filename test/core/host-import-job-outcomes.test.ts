import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JobStore, JOBS_DIR } from '../../src/core/job-store.js';
import { hostResultJson, OutcomeFile } from '../../src/core/outcome-file.js';
import type { HostAccountOutcome } from '../../src/transfer/host-transfer.js';
import { OutcomeListWriter } from '../../src/transfer/host-report.js';

const ok: HostAccountOutcome = {
  user: 'juliet@capulet.example',
  mode: 'merge',
  dryRun: false,
  created: true,
  counts: { credentials: 1, roster: 2 },
  skipped: [{ kind: 'other', reason: 'a "quoted" reason' }],
  unsupported: [],
  warnings: ['line one\nline two', '\u0000users-file\u0000'],
};
const failed: HostAccountOutcome = { user: 'romeo@montague.example', error: 'busy' };

async function text(chunks: AsyncIterable<string | Buffer>): Promise<string> {
  let all = '';
  for await (const chunk of chunks) all += chunk.toString();
  return all;
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-outcomes-'));
  dirs.push(dir);
  return dir;
}

describe('OutcomeListWriter', () => {
  it.each([[[]], [[ok]], [[ok, failed, ok]]] as HostAccountOutcome[][][])('writes what JSON.stringify writes, compact and indented (%#)', (users) => {
    let compact = '';
    const c = new OutcomeListWriter((t) => (compact += t));
    for (const u of users) c.add(u);
    c.end();
    expect(compact).toBe(JSON.stringify(users));
    let indented = '';
    const i = new OutcomeListWriter((t) => (indented += t), { indent: 2, depth: 4 });
    for (const u of users) i.add(u);
    i.end();
    expect(indented).toBe(JSON.stringify(users, null, 2).replaceAll('\n', '\n    '));
  });
});

describe('a host import result kept in a file', () => {
  it('is sent as JSON.stringify of the whole result', async () => {
    const file = new OutcomeFile(join(tempDir(), 'users.json'), 0o600);
    const users = Array.from({ length: 3000 }, (_, i) => (i % 7 === 0 ? failed : { ...ok, user: `u${i}@capulet.example` }));
    for (const u of users) file.add(u);
    file.close();
    const result = { host: 'capulet.example', users, progress: { done: 3000, failed: 429, total: 3000 } };
    expect(await text(hostResultJson(result, file.path))).toBe(JSON.stringify(result));
  });

  it('is a job result the store lists whole, streams as JSON.stringify would, and removes with the job', async () => {
    const dir = tempDir();
    const store = JobStore.open(join(dir, 'jobs.sqlite'), 0o600, 0);
    const job = store.create({ id: 'j1', type: 'host-import', host: 'capulet.example', progress: { done: 0, failed: 0, records: 0, bytes: 0 } });
    const file = new OutcomeFile(store.usersFile(job.id), 0o600);
    file.add(ok);
    file.add(failed);
    file.close();
    store.finish(job.id, 'succeeded', { result: { host: 'capulet.example', users: [], progress: { done: 2, failed: 1 } }, usersInFile: true });
    const whole = store.get(job.id);
    expect((whole?.result as { users: unknown[] }).users).toEqual([ok, failed]);
    const lazy = store.get(job.id, { users: false });
    expect((lazy?.result as { users: unknown[] }).users).toEqual([]);
    expect(await text(store.json(lazy!))).toBe(JSON.stringify(whole));
    expect(await text(store.json(store.list(10, { users: false })[0]!))).toBe(JSON.stringify(store.list(10)[0]));
    // Retention 0: the next job prunes the ended one and its file.
    store.create({ id: 'j2', type: 'host-import', host: 'capulet.example', progress: { done: 0, failed: 0, records: 0, bytes: 0 } });
    expect(store.get(job.id)).toBeUndefined();
    expect(readdirSync(join(dir, JOBS_DIR))).toEqual([]);
    store.close();
  });
});
