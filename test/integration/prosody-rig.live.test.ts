/**
 * Proves the Prosody test rig itself: a real server starts and stops cleanly, prosodyctl
 * accounts can log in over SCRAM (non-ASCII names included), and each SQL backend works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser, deleteUser, describeWithProsody, isCI, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { sqlServerAvailable, type SqlServerKind } from '../../bench/sql-databases.js';
import { existsSync } from 'node:fs';
import { componentOf, getRoster, loginAs, setRosterItem, xml, XmppStanzaError, type XmlElement, type XmppClient } from '../support/xmpp-client.js';

function expectProcessGone(pid: number | undefined): void {
  expect(pid).toBeTypeOf('number');
  let error: unknown;
  try {
    process.kill(pid as number, 0);
  } catch (err) {
    error = err;
  }
  expect((error as NodeJS.ErrnoException | undefined)?.code).toBe('ESRCH');
}

describeWithProsody('Prosody rig (SQLite)', () => {
  let prosody: ProsodyHandle;
  const clients: XmppClient[] = [];
  let pid: number | undefined;

  beforeAll(async () => {
    prosody = await startProsody({ storage: 'sqlite', hosts: ['localhost', 'example.test'], privilege: true });
    pid = prosody.pid;
    await createUser(prosody, 'alice', 'localhost', 'alice-pw');
    await createUser(prosody, 'bob', 'localhost', 'bob-pw');
    await createUser(prosody, 'zoë', 'localhost', 'zoë-pw ✓');
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    if (!prosody) return;
    const rootDir = prosody.rootDir;
    await prosody.stop();
    expectProcessGone(pid);
    expect(prosody.running).toBe(false);
    if (process.env.XPORTA_KEEP_TEST_DATA !== '1') expect(existsSync(rootDir)).toBe(false);
  });

  it('runs on free loopback ports with its own config', () => {
    expect(prosody.running).toBe(true);
    expect(prosody.c2sPort).not.toBe(5222);
    expect(prosody.componentPort).not.toBe(5347);
    expect(prosody.sql).toMatchObject({ driver: 'SQLite3' });
    expect(prosody.configPath.startsWith(prosody.rootDir)).toBe(true);
  });

  it('stores a roster item that reads back with name and group', async () => {
    const alice = await loginAs(prosody, 'alice', 'alice-pw', { resource: 'rig' });
    clients.push(alice);
    expect(alice.jid).toBe('alice@localhost/rig');

    await setRosterItem(alice, 'bob@localhost', 'Bob Example', ['Friends']);
    const roster = await getRoster(alice);
    expect(roster).toEqual([{ jid: 'bob@localhost', name: 'Bob Example', subscription: 'none', groups: ['Friends'] }]);
  });

  it('logs in a user with a non-ASCII name over SCRAM', async () => {
    const zoe = await loginAs(prosody, 'zoë', 'zoë-pw ✓');
    clients.push(zoe);
    expect(zoe.bareJid).toBe('zoë@localhost');
    expect(await getRoster(zoe)).toEqual([]);
  });

  it('serves a second VirtualHost', async () => {
    await createUser(prosody, 'alice', 'example.test', 'other-pw');
    const other = await loginAs(prosody, 'alice', 'other-pw', { host: 'example.test' });
    clients.push(other);
    expect(other.bareJid).toBe('alice@example.test');
    expect(await getRoster(other)).toEqual([]);
  });

  it('accepts the component and grants it privileges on every host', async () => {
    const component = await componentOf(prosody);
    clients.push(component);
    const isPrivilege = (from: string) => (s: XmlElement) =>
      s.name === 'message' && s.attrs.from === from && s.getChild('privilege', 'urn:xmpp:privilege:2') !== undefined;
    for (const host of ['localhost', 'example.test']) {
      const message = await component.waitFor(isPrivilege(host));
      const perms = message.getChild('privilege', 'urn:xmpp:privilege:2')?.getChildren('perm') ?? [];
      expect(Object.fromEntries(perms.map((p) => [p.attrs.access, p.attrs.type]))).toMatchObject({
        roster: 'both',
        message: 'outgoing',
        presence: 'roster',
      });
    }
    // Privileged roster get: the component reads alice's roster without her credentials.
    const result = await component.iq(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    expect(result.getChild('query', 'jabber:iq:roster')?.getChildren('item').map((i) => i.attrs.jid)).toEqual(['bob@localhost']);
  });

  it('rejects a wrong password', async () => {
    await expect(loginAs(prosody, 'bob', 'not-bobs')).rejects.toThrow(/not-authorized/);
  });

  it('reports IQ errors with their condition', async () => {
    const bob = await loginAs(prosody, 'bob', 'bob-pw');
    clients.push(bob);
    const err = await bob.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'urn:example:unknown' }))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XmppStanzaError);
    expect((err as XmppStanzaError).condition).toBe('service-unavailable');
  });

  it('keeps data across restart() and deletes accounts with prosodyctl', async () => {
    const before = prosody.pid;
    await prosody.restart();
    expect(prosody.pid).not.toBe(before);
    expectProcessGone(before);
    pid = prosody.pid;

    const alice = await loginAs(prosody, 'alice', 'alice-pw');
    clients.push(alice);
    expect((await getRoster(alice)).map((i) => i.jid)).toEqual(['bob@localhost']);

    await createUser(prosody, 'temp', 'localhost', 'temp-pw');
    const temp = await loginAs(prosody, 'temp', 'temp-pw');
    await temp.close();
    await deleteUser(prosody, 'temp', 'localhost');
    await expect(loginAs(prosody, 'temp', 'temp-pw')).rejects.toThrow(/not-authorized/);
  });
});

// Top-level await: skipIf needs the answer while the suite is collected.
const sqlAvailable: Record<SqlServerKind, boolean> = {
  postgres: await sqlServerAvailable('postgres'),
  mysql: await sqlServerAvailable('mysql'),
};

describeWithProsody('Prosody rig on SQL servers', () => {
  for (const kind of ['postgres', 'mysql'] as const) {
    // Outside CI a developer without the server skips; under CI a missing server is a failure.
    const skip = !sqlAvailable[kind] && !isCI;
    describe.skipIf(skip)(kind, () => {
      let prosody: ProsodyHandle | undefined;
      afterAll(async () => {
        if (!prosody) return;
        const pid = prosody.pid;
        await prosody.stop();
        expectProcessGone(pid);
        expect(await databaseExists(kind, prosody.sql?.database ?? '')).toBe(false);
      });

      it('creates its own database and logs a user in (SCRAM-SHA-256 on this one)', async () => {
        if (!sqlAvailable[kind]) throw new Error(`${kind} is not reachable (see test/support/sql-databases.ts)`);
        prosody = await startProsody({ storage: kind, passwordHash: 'SHA-256' });
        expect(prosody.sql?.database).toMatch(/^xporta_test_[0-9a-f]+$/);
        expect(await databaseExists(kind, prosody.sql?.database ?? '')).toBe(true);
        await createUser(prosody, 'alice', 'localhost', 'alice-pw');
        await createUser(prosody, 'zoë', 'localhost', 'zoë-pw');
        const alice = await loginAs(prosody, 'alice', 'alice-pw');
        const zoe = await loginAs(prosody, 'zoë', 'zoë-pw');
        try {
          await setRosterItem(alice, 'zoë@localhost', 'Zoë', ['Ελληνικά']);
          expect(await getRoster(alice)).toEqual([{ jid: 'zoë@localhost', name: 'Zoë', subscription: 'none', groups: ['Ελληνικά'] }]);
          expect(zoe.bareJid).toBe('zoë@localhost');
        } finally {
          await Promise.all([alice.close(), zoe.close()]);
        }
      });
    });
  }
});

async function databaseExists(kind: SqlServerKind, name: string): Promise<boolean> {
  const { sqlServer } = await import('../../bench/sql-databases.js');
  const server = sqlServer(kind);
  if (kind === 'postgres') {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ host: server.host, port: server.port, user: server.username, password: server.password, database: 'postgres' });
    await client.connect();
    try {
      return (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
    } finally {
      await client.end();
    }
  }
  const mysql = (await import('mysql2/promise')).default;
  const conn = await mysql.createConnection({ host: server.host, port: server.port, user: server.username, password: server.password });
  try {
    const [rows] = await conn.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = ?', [name]);
    return Array.isArray(rows) && rows.length === 1;
  } finally {
    await conn.end();
  }
}
