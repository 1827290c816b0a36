/**
 * Host imports take the per-account lock user imports and exports take: a host import and a user
 * import into the same account never overwrite each other silently; one of them is refused.
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceContext } from '../../src/core/context.js';
import { accountDocument } from '../support/documents.js';
import { archiveCount, exportDoc, importDoc, startService, TOKEN, type TestService } from '../support/service.js';

function hostImport(app: FastifyInstance, doc: string, query = 'createAccount=true&mode=replace'): Promise<{ status: number; body: string }> {
  return app
    .inject({
      method: 'PUT',
      url: `/v1/hosts/localhost/import?${query}`,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/xml' },
      payload: doc,
    })
    .then((r) => ({ status: r.statusCode, body: r.body }));
}

async function until(check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('host imports and account locks (SQLite store)', () => {
  let service: TestService;
  let ctx: ServiceContext;
  // Large enough that a host import holds the account's lease for many times longer than a user
  // import takes to be refused.
  const big = accountDocument({ host: 'localhost', user: 'alice', password: 'pw', archiveCount: 10_000 });
  const held = accountDocument({ host: 'localhost', user: 'alice', password: 'pw', archiveCount: 500 });
  const small = accountDocument({ host: 'localhost', user: 'alice', password: 'pw', archiveCount: 7 });

  beforeAll(async () => {
    service = await startService(undefined, { XPORTA_LIMITS__MAX_CONCURRENT_IMPORTS: '4' });
    ctx = (service.app as FastifyInstance & { ctx: ServiceContext }).ctx;
  });
  afterAll(() => service?.close());

  it('a host import reaching an account a user import holds reports a conflict for it and leaves it alone', async () => {
    // The user import holds the lease while its upload waits for the rest of the document.
    const body = new PassThrough();
    const half = Math.floor(held.length / 2);
    body.write(held.slice(0, half));
    const user = service.app.inject({
      method: 'PUT',
      url: `/v1/users/${encodeURIComponent('alice@localhost')}/import?createAccount=true`,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/xml' },
      payload: body,
    });
    await until(() => ctx.locks.isBusy('alice@localhost'));
    const host = await hostImport(service.app, small);
    expect(host.status, host.body).toBe(200);
    const result = JSON.parse(host.body) as { users: { user: string; error?: string }[]; progress: { failed: number } };
    expect(result.users).toEqual([{ user: 'alice@localhost', error: expect.stringMatching(/^conflict: another operation on alice@localhost is running/) as unknown }]);
    expect(result.progress.failed).toBe(1);
    body.end(held.slice(half));
    expect((await user).statusCode).toBe(200);
    expect(archiveCount((await exportDoc(service.app, 'alice@localhost')).body)).toBe(500);
  }, 120_000);

  it('a user import into an account a host import holds gets 409', async () => {
    const accepted = await hostImport(service.app, big, 'createAccount=true&mode=replace&async=true');
    expect(accepted.status).toBe(202);
    const job = JSON.parse(accepted.body) as { id: string };
    await until(() => ctx.locks.isBusy('alice@localhost'));
    const user = await importDoc(service.app, 'alice@localhost', small);
    expect(user.status).toBe(409);
    let state: { state: string } = { state: 'running' };
    for (const deadline = Date.now() + 60_000; state.state === 'running' && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 20));
      state = JSON.parse((await service.app.inject({ method: 'GET', url: `/v1/jobs/${job.id}`, headers: { authorization: `Bearer ${TOKEN}` } })).body) as { state: string };
    }
    expect(state).toMatchObject({ state: 'succeeded', progress: { done: 1, failed: 0 } });
    expect(archiveCount((await exportDoc(service.app, 'alice@localhost')).body)).toBe(10_000);
  }, 120_000);
});
