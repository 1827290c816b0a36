/**
 * The component's "Import from another XMPP account" command against a real Prosody 0.12: the
 * old account is dave@stranger.test, a VirtualHost of the same server that xporta does not
 * serve, reached only over c2s as "the other provider" (plaintext allowed for this test: TLS is
 * covered by test/integration/pull-xmpp.live.test.ts). alice@localhost runs the command from her
 * client; her account then holds dave's roster and archive.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { UserRecord } from '../../src/records/model.js';
import { selectKinds } from '../../src/transfer/account-transfer.js';
import { createUser, describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { loginAs, queryMam, sendMessage, setRosterItem, type XmppClient } from '../support/xmpp-client.js';
import { command, NS_DATA, startXporta, type Xporta } from '../support/xmpp-component.js';

const OLD_PASSWORD = 'Dave-Old-Secret-Pa55';

describeWithProsody('component command "Import from another XMPP account"', () => {
  let prosody: ProsodyHandle;
  let xporta: Xporta;
  let componentJid: string;
  const clients: XmppClient[] = [];
  const sent: string[] = [];

  beforeAll(async () => {
    prosody = await startProsody({ hosts: ['localhost', 'stranger.test'], privilege: true });
    componentJid = prosody.component.jid;
    await createUser(prosody, 'alice', 'localhost', 'alice-pw');
    await createUser(prosody, 'dave', 'stranger.test', OLD_PASSWORD);
    await createUser(prosody, 'emma', 'stranger.test', 'emma-pw');
    const dave = await loginAs(prosody, 'dave', OLD_PASSWORD, { host: 'stranger.test' });
    try {
      await setRosterItem(dave, 'emma@stranger.test', 'Emma', ['Friends']);
      for (let i = 0; i < 3; i++) sent.push(await sendMessage(dave, 'emma@stranger.test', `hello ${i}`));
    } finally {
      await dave.close();
    }
    xporta = await startXporta(prosody, {
      hosts: ['localhost'],
      env: {
        XPORTA_OUTGOING: JSON.stringify({ allow: ['127.0.0.0/8'] }),
        XPORTA_XMPP_CLIENT: JSON.stringify({ services: [`stranger.test=127.0.0.1:${prosody.c2sPort}`], allowPlaintext: true, timeoutMs: 5000 }),
      },
    });
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await xporta?.close();
    await prosody?.stop();
  });

  const aliceRecords = async (): Promise<UserRecord[]> => {
    const out: UserRecord[] = [];
    for await (const r of xporta.app.ctx.storage.readUser({ host: 'localhost', user: 'alice' }, { include: selectKinds('roster,archive') })) out.push(r);
    return out;
  };

  it('asks for the old address and a private password, and imports the old account into the requester’s own', async () => {
    const alice = await loginAs(prosody, 'alice', 'alice-pw');
    clients.push(alice);
    const form = await command(alice, componentJid, 'pull');
    expect(form).toMatchObject({ status: 'executing', formType: 'form' });
    const fields = form.element.getChild('x', NS_DATA)?.getChildren('field') ?? [];
    expect(fields.find((f) => f.attrs.var === 'password')?.attrs.type).toBe('text-private');
    expect(fields.find((f) => f.attrs.var === 'old-jid')?.attrs.type).toBe('jid-single');

    // A wrong password: an error note, nothing imported.
    const wrong = await command(alice, componentJid, 'pull', { action: 'complete', sessionid: form.sessionid, form: { 'old-jid': 'dave@stranger.test', password: 'Wr0ng-Pa55', mode: 'merge' } });
    expect(wrong.status).toBe('completed');
    expect(wrong.notes[0]).toMatchObject({ type: 'error' });
    expect(wrong.notes[0]?.text).toMatch(/refused the login/);
    expect((await aliceRecords()).filter((r) => r.kind === 'archive')).toEqual([]);

    const again = await command(alice, componentJid, 'pull');
    const done = await command(alice, componentJid, 'pull', { action: 'complete', sessionid: again.sessionid, form: { 'old-jid': 'dave@stranger.test', password: OLD_PASSWORD, mode: 'merge' } });
    expect(done.status, JSON.stringify(done.notes)).toBe('completed');
    expect(done.notes[0]?.text).toMatch(/^Your old account dave@stranger\.test was imported \(merge\)/);
    expect(done.fields.get('old-jid')).toEqual(['dave@stranger.test']);
    expect(done.fields.get('archive-total')).toEqual(['3']);

    const records = await aliceRecords();
    const roster = records.find((r) => r.kind === 'roster');
    expect(roster?.kind === 'roster' ? roster.items.map((i) => [i.jid, i.name, [...i.groups]]) : []).toEqual([['emma@stranger.test', 'Emma', ['Friends']]]);
    // The local server serves the archive, original message ids kept.
    const fresh = await loginAs(prosody, 'alice', 'alice-pw');
    clients.push(fresh);
    const mam = await queryMam(fresh, { max: 10 });
    // (The component's notice of the import may be archived too.)
    expect(mam.filter((m) => m.message.attrs.to === 'emma@stranger.test').map((m) => m.message.attrs.id)).toEqual(sent);

    for (const line of xporta.log) expect(line).not.toContain(OLD_PASSWORD);
    expect(await prosody.logTail(400)).not.toContain(OLD_PASSWORD);
  });

  it('asks again for a missing address or password', async () => {
    const alice = await loginAs(prosody, 'alice', 'alice-pw');
    clients.push(alice);
    const form = await command(alice, componentJid, 'pull');
    const missing = await command(alice, componentJid, 'pull', { action: 'complete', sessionid: form.sessionid, form: { 'old-jid': 'dave@stranger.test', password: '' } });
    expect(missing.status).toBe('executing');
    expect(missing.notes[0]?.text).toMatch(/password/);
  });
});
