/**
 * Acceptance for the one import pipeline, the component's face: the "Import into my account"
 * command hands out a one-time link whose upload goes through the same pipeline as every other
 * import (src/core/import-pipeline.ts), so it takes the account's lease, counts in /metrics, and
 * the component (the registered notifier) tells the user's online client. Real Prosody 0.12 with
 * mod_privilege, a real client, real HTTP on the link. The other faces are in
 * test/core/import-faces.test.ts.
 */
import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ImportFinished } from '../../src/core/context.js';
import { accountDocument } from '../support/documents.js';
import { createUser, describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { loginAs, type XmppClient } from '../support/xmpp-client.js';
import { command, eventually, OPERATOR, startXporta, type Xporta } from '../support/xmpp-component.js';

/** `xporta_imports_total{source="upload",outcome="ok"}` from the /metrics text. */
function uploadsCounted(text: string): number {
  const line = text.split('\n').find((l) => l.startsWith('xporta_imports_total{') && l.includes('source="upload"') && l.includes('outcome="ok"'));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describeWithProsody('the component’s import goes through the one pipeline', () => {
  let prosody: ProsodyHandle;
  let xporta: Xporta;
  const clients: XmppClient[] = [];
  const seen: ImportFinished[] = [];

  beforeAll(async () => {
    prosody = await startProsody({ hosts: ['localhost'], privilege: true });
    await createUser(prosody, 'alice', 'localhost', 'alice-pw');
    xporta = await startXporta(prosody, { hosts: ['localhost'], backoff: { initialMs: 100, maxMs: 1000 } });
    await eventually(() => xporta.component.permissions.roster('localhost', 'set'), 'privileges');
    // Every event still reaches the component (the registered notifier); the test sees them pass.
    const registered = xporta.app.ctx.notifier;
    xporta.app.ctx.notifier = {
      importFinished: (event) => {
        seen.push(event);
        registered?.importFinished(event);
      },
    };
  }, 120_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await xporta?.close();
    await prosody?.stop();
  });

  it('takes the lease, counts the import and notifies the user', async () => {
    const online = await loginAs(prosody, 'alice', 'alice-pw', { host: 'localhost', presence: true });
    clients.push(online);
    const alice = await loginAs(prosody, 'alice', 'alice-pw', { host: 'localhost' });
    clients.push(alice);
    const componentJid = prosody.component.jid;
    const importLink = async (): Promise<string> => {
      const options = await command(alice, componentJid, 'import');
      const linked = await command(alice, componentJid, 'import', { action: 'next', sessionid: options.sessionid, form: { source: 'account', mode: 'merge' } });
      expect(linked.status).toBe('completed');
      return linked.fields.get('url')?.[0] ?? '';
    };
    const doc = accountDocument({ host: 'localhost', user: 'alice', password: 'not-used' });
    const put = (url: string) => request(url, { method: 'PUT', headers: { 'content-type': 'application/xml' }, body: doc });
    const metrics = async (): Promise<string> =>
      (await xporta.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${OPERATOR}` } })).body;

    const lease = await xporta.app.ctx.locks.tryAcquire('alice@localhost', 'exclusive');
    expect(lease).toBeDefined();
    const refused = await put(await importLink());
    lease?.release();
    expect(refused.statusCode).toBe(409);
    await refused.body.dump();
    expect(seen).toHaveLength(0);

    const before = uploadsCounted(await metrics());
    const done = await put(await importLink());
    expect(done.statusCode).toBe(200);
    expect(await done.body.json()).toMatchObject({ dryRun: false, mode: 'merge' });
    expect(uploadsCounted(await metrics())).toBe(before + 1);
    expect(seen.map((e) => [e.source, e.jid, e.principal?.kind])).toEqual([['upload', 'alice@localhost', 'user']]);
    const notice = await online.waitFor((s) => s.name === 'message' && s.attrs.from === componentJid, 10_000);
    expect(notice.attrs.type).toBe('headline');
    await xporta.component.idle();
    expect(xporta.app.ctx.importSlots.inUse).toBe(0);
    expect(xporta.app.ctx.locks.isBusy('alice@localhost')).toBe(false);
  }, 120_000);
});
