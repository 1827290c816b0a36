/**
 * PostgreSQL and MariaDB host imports group small accounts as SQLite's do (see
 * test/transfer/host-batching.test.ts): a statement that fails inside an account (which aborts
 * PostgreSQL's transaction) is undone by the account's savepoint, and the group goes on and commits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NS, element, type DocumentEvent } from '../../../src/records/model.js';
import { ProsodySqlBackend } from '../../../src/storage/prosody-sql/backend.js';
import type { SqlDialect, SqlParam, SqlTransaction } from '../../../src/storage/sql/dialect.js';
import { selectKinds } from '../../../src/transfer/account-transfer.js';
import { importHostDocument, validateHostDocument } from '../../../src/transfer/host-transfer.js';
import { openMariadb, openPostgres, skipWithout } from '../../support/storage/databases.js';
import type { TestDatabase } from '../../support/storage/sql-suite.js';

const HOST = 'localhost';

function account(name: string): DocumentEvent[] {
  return [
    { kind: 'user', name, password: 'pw', scram: [], extraAttributes: {} },
    { kind: 'roster', items: [{ jid: 'friend@example.net', subscription: 'both', groups: [] }] },
    ...[0, 1].map(
      (i): DocumentEvent => ({
        kind: 'archive',
        id: `${name}-${i}`,
        timestamp: `2025-01-01T00:00:0${i}Z`,
        stanza: element('message', NS.client, { from: 'friend@example.net/x', to: `${name}@${HOST}`, type: 'chat' }, [element('body', NS.client, {}, [`m${i}`])]),
      }),
    ),
    { kind: 'user-end' },
  ];
}

async function* replay(events: readonly DocumentEvent[]): AsyncGenerator<DocumentEvent> {
  yield* events;
}

/** The dialect, with a statement that fails on the server (and so aborts the transaction) at the first archive write of account `b`. */
function failingAt(db: SqlDialect, user: string): { db: SqlDialect; transactions: () => number } {
  let transactions = 0;
  let failed = false;
  const wrapped = Object.create(db) as SqlDialect;
  wrapped.begin = async () => {
    transactions++;
    const tx: SqlTransaction = await db.begin();
    const sabotage = async (sql: string, params: readonly SqlParam[] | undefined): Promise<void> => {
      if (!failed && sql.includes('INSERT INTO "prosodyarchive"') && params?.includes(user)) {
        failed = true;
        await tx.query('SELECT * FROM "xporta_no_such_table"');
      }
    };
    const { query, run } = tx;
    tx.query = async (sql, params) => (await sabotage(sql, params), query.call(tx, sql, params));
    tx.run = async (sql, params) => (await sabotage(sql, params), run.call(tx, sql, params));
    if (tx.write) {
      const write = tx.write;
      tx.write = async (sql, params) => (await sabotage(sql, params), write.call(tx, sql, params));
    }
    return tx;
  };
  return { db: wrapped, transactions: () => transactions };
}

describe.each([
  { name: 'PostgreSQL', kind: 'postgres' as const, open: openPostgres },
  { name: 'MariaDB', kind: 'mysql' as const, open: openMariadb },
])('$name host import groups', async ({ kind, open }) => {
  const skip = await skipWithout(kind);
  let database: TestDatabase;
  beforeAll(async () => {
    if (!skip) database = await open();
  });
  afterAll(async () => {
    await database?.dialect.close();
    await database?.drop();
  });

  it.skipIf(skip)('one transaction for a group; a failed statement in one account undoes that account alone', async () => {
    const sabotaged = failingAt(database.dialect, 'b');
    const backend = new ProsodySqlBackend(sabotaged.db, { hosts: { [HOST]: { passwordHash: 'SHA-1' } }, serverVersion: '0.12' });
    const events: DocumentEvent[] = [{ kind: 'host', jid: HOST }, ...['a', 'b', 'c', 'd'].flatMap(account), { kind: 'host-end' }];
    const { sizes } = await validateHostDocument(replay(events), HOST);
    const result = await importHostDocument(backend, HOST, replay(events), { mode: 'merge', dryRun: false, include: selectKinds(), createAccount: true, sizes });
    expect(result.progress).toMatchObject({ done: 4, failed: 1 });
    expect(result.users[1]).toMatchObject({ user: `b@${HOST}`, error: expect.stringMatching(/xporta_no_such_table/) as unknown });
    expect(sabotaged.transactions()).toBe(1);
    expect(await backend.userExists({ host: HOST, user: 'b' })).toBe(false);
    for (const user of ['a', 'c', 'd']) {
      let messages = 0;
      for await (const record of backend.readUser({ host: HOST, user }, { include: selectKinds() })) if (record.kind === 'archive') messages++;
      expect(messages).toBe(2);
    }
  });
});
