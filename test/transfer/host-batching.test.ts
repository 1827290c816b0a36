/**
 * A host import groups small accounts into one transaction each group (HostBatching), each
 * account under a savepoint: a failing account is undone alone, the others of its group are
 * kept, and a group whose transaction breaks is applied again account by account.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NS, element, type DocumentEvent } from '../../src/records/model.js';
import { BatchBrokenError, StorageError, type ApplyBatch, type StorageBackend } from '../../src/storage/backend.js';
import { ProsodySqlBackend } from '../../src/storage/prosody-sql/backend.js';
import { SqliteDialect } from '../../src/storage/sql/sqlite/dialect.js';
import type { SqlDialect, SqlTransaction } from '../../src/storage/sql/dialect.js';
import { selectKinds } from '../../src/transfer/account-transfer.js';
import { importHostDocument, validateHostDocument, type HostBatching, type HostImportResult } from '../../src/transfer/host-transfer.js';

const HOST = 'localhost';
const SETTINGS = { hosts: { [HOST]: { passwordHash: 'SHA-1' as const } }, serverVersion: '0.12' as const };
const BATCHING: HostBatching = { accounts: 3, records: 1000, smallAccount: 100 };

/** An account with credentials, a contact and `messages` archived messages; `broken`: a structure error after its contact. */
function account(name: string, messages = 2, broken = false): DocumentEvent[] {
  const me = `${name}@${HOST}`;
  return [
    { kind: 'user', name, password: 'pw', scram: [], extraAttributes: {} },
    { kind: 'roster', items: [{ jid: `friend@example.net`, subscription: 'both', groups: [] }] },
    ...(broken ? [{ kind: 'host', jid: HOST } as DocumentEvent] : []),
    ...Array.from({ length: messages }, (_, i): DocumentEvent => ({
      kind: 'archive',
      id: `${name}-${i}`,
      timestamp: `2025-01-01T00:00:0${i % 10}Z`,
      stanza: element('message', NS.client, { from: `friend@example.net/x`, to: me, type: 'chat' }, [element('body', NS.client, {}, [`m${i}`])]),
    })),
    { kind: 'user-end' },
  ];
}

function hostDocument(accounts: DocumentEvent[][]): DocumentEvent[] {
  return [{ kind: 'host', jid: HOST }, ...accounts.flat(), { kind: 'host-end' }];
}

async function* replay(events: readonly DocumentEvent[]): AsyncGenerator<DocumentEvent> {
  yield* events;
}

/** Counts the transactions and their commits the backend opens. */
function counted(db: SqlDialect): { db: SqlDialect; transactions: () => number; commits: () => number } {
  let transactions = 0;
  let commits = 0;
  const wrap = (tx: SqlTransaction): SqlTransaction => {
    transactions++;
    const commit = tx.commit.bind(tx);
    tx.commit = () => {
      commits++;
      return commit();
    };
    return tx;
  };
  const wrapped: SqlDialect = Object.create(db) as SqlDialect;
  wrapped.begin = async () => wrap(await db.begin());
  if (db.beginShort) wrapped.beginShort = async () => wrap(await (db.beginShort as () => Promise<SqlTransaction>).call(db));
  return { db: wrapped, transactions: () => transactions, commits: () => commits };
}

// Told the accounts' names, the backend imports those without rows in memory (pending-rows.ts); the rules are the same.
describe.each([
  { variant: 'each account with statements', withUsers: false },
  { variant: 'accounts without rows in memory', withUsers: true },
])('host import batching (SQLite, $variant)', ({ withUsers }) => {
  let dir: string;
  let dialect: SqliteDialect;
  let backend: ProsodySqlBackend;
  let count: ReturnType<typeof counted>;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xporta-host-batching-'));
    dialect = SqliteDialect.open({ database: join(dir, 'prosody.sqlite') });
    count = counted(dialect);
    backend = new ProsodySqlBackend(count.db, SETTINGS);
  });
  afterEach(async () => {
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(storage: StorageBackend, events: DocumentEvent[], extra: { dryRun?: boolean; reopen?: boolean; sizes?: number[] } = {}): Promise<{ result: HostImportResult; seen: string[] }> {
    const sizes = extra.sizes ?? (await validateHostDocument(replay(events), HOST)).sizes;
    const users = events.flatMap((e) => (e.kind === 'user' ? [e.name] : []));
    const seen: string[] = [];
    const result = await importHostDocument(storage, HOST, replay(events), {
      mode: 'merge',
      dryRun: extra.dryRun ?? false,
      include: selectKinds(),
      createAccount: true,
      sizes,
      ...(withUsers ? { users } : {}),
      batching: BATCHING,
      onUser: (jid) => seen.push(jid),
      ...(extra.reopen ? { reopen: () => replay(events), retryPolicy: { attempts: 3, baseDelayMs: 1, maxDelayMs: 1 } } : {}),
    });
    return { result, seen };
  }

  async function stored(name: string): Promise<number | undefined> {
    if (!(await backend.userExists({ host: HOST, user: name }))) return undefined;
    let messages = 0;
    for await (const record of backend.readUser({ host: HOST, user: name }, { include: selectKinds() })) if (record.kind === 'archive') messages++;
    return messages;
  }

  it('commits small accounts in groups, reports every account in document order, and gives a big account a transaction of its own', async () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const events = hostDocument([...names.map((n) => account(n)), account('big', 150), account('h')]);
    const { result, seen } = await run(backend, events);
    expect(result.progress).toMatchObject({ done: 9, failed: 0 });
    expect(seen).toEqual([...names, 'big', 'h'].map((n) => `${n}@${HOST}`));
    expect(result.users.map((u) => u.user)).toEqual(seen);
    // a-c, d-f, g (ended before the big account), big alone, h.
    expect(count.transactions()).toBe(5);
    expect(count.commits()).toBe(5);
    for (const n of [...names, 'h']) expect(await stored(n)).toBe(2);
    expect(await stored('big')).toBe(150);
  });

  it('an account that fails in the middle of a group changes nothing, and the accounts around it are kept', async () => {
    // The first pass would refuse the document: the apply pass meets the failure here as it meets a storage failure.
    const events = hostDocument([account('a'), account('b', 2, true), account('c'), account('d')]);
    const { result } = await run(backend, events, { sizes: [3, 4, 3, 3] });
    expect(result.progress).toMatchObject({ done: 4, failed: 1 });
    expect(result.users[1]).toEqual({ user: `b@${HOST}`, error: 'unexpected structure inside a user' });
    expect(await stored('a')).toBe(2);
    // Its contact went in before the failure: the savepoint took it back, and the account was never created.
    expect(await stored('b')).toBeUndefined();
    expect(await stored('c')).toBe(2);
    expect(await stored('d')).toBe(2);
  });

  it('a dry run reports every account and keeps none', async () => {
    const events = hostDocument(['a', 'b', 'c', 'd'].map((n) => account(n)));
    const { result } = await run(backend, events, { dryRun: true });
    expect(result.progress).toMatchObject({ done: 4, failed: 0 });
    expect(result.users.every((u) => 'dryRun' in u && u.dryRun && u.created)).toBe(true);
    for (const n of ['a', 'b', 'c', 'd']) expect(await stored(n)).toBeUndefined();
  });

  it('a group whose transaction breaks is rolled back whole and its accounts applied again one by one from the spool', async () => {
    let broke = false;
    const flaky: StorageBackend = Object.create(backend) as StorageBackend;
    flaky.beginBatch = async (options) => {
      const batch = await backend.beginBatch(options);
      const wrapped: ApplyBatch = {
        applyUser: async (ref, start, records, applyOptions) => {
          if (ref.user === 'b' && !broke) {
            broke = true;
            throw new BatchBrokenError(new StorageError('unavailable', 'storage temporarily unavailable: connection lost', { retryable: true }));
          }
          return batch.applyUser(ref, start, records, applyOptions);
        },
        commit: () => batch.commit(),
        rollback: () => batch.rollback(),
      };
      return wrapped;
    };
    const events = hostDocument(['a', 'b', 'c', 'd'].map((n) => account(n)));
    const { result, seen } = await run(flaky, events, { reopen: true });
    expect(result.progress).toMatchObject({ done: 4, failed: 0 });
    expect(seen).toEqual(['a', 'b', 'c', 'd'].map((n) => `${n}@${HOST}`));
    for (const n of ['a', 'b', 'c', 'd']) expect(await stored(n)).toBe(2);
  });

  it('without a spool to read again, the accounts of a broken group are reported failed and none of them is kept', async () => {
    const flaky: StorageBackend = Object.create(backend) as StorageBackend;
    flaky.beginBatch = async (options) => {
      const batch = await backend.beginBatch(options);
      return {
        applyUser: async (ref, start, records, applyOptions) => {
          if (ref.user === 'b') throw new BatchBrokenError(new StorageError('unavailable', 'connection lost', { retryable: true }));
          return batch.applyUser(ref, start, records, applyOptions);
        },
        commit: () => batch.commit(),
        rollback: () => batch.rollback(),
      };
    };
    const events = hostDocument(['a', 'b', 'c'].map((n) => account(n)));
    const { result } = await run(flaky, events);
    expect(result.progress).toMatchObject({ done: 3, failed: 2 });
    expect(result.users.map((u) => ('error' in u ? u.error : 'ok'))).toEqual(['connection lost', 'connection lost', 'ok']);
    expect(await stored('a')).toBeUndefined();
    expect(await stored('b')).toBeUndefined();
    expect(await stored('c')).toBe(2);
  });
});

describe('host import of accounts without rows (SQLite, pending-rows.ts)', () => {
  let dir: string;
  let dialect: SqliteDialect;
  let statements: string[];
  let failInsert: ((sql: string) => boolean) | undefined;

  /** Records every statement of the backend's transactions; `failInsert` makes one fail. */
  function observed(db: SqlDialect): SqlDialect {
    const wrap = (tx: SqlTransaction): SqlTransaction => {
      const run = tx.run.bind(tx);
      tx.run = (sql, params) => {
        statements.push(sql);
        if (failInsert?.(sql)) {
          failInsert = undefined;
          return Promise.reject(new Error('disk I/O error'));
        }
        return run(sql, params);
      };
      const query = tx.query.bind(tx);
      tx.query = (sql, params) => {
        statements.push(sql);
        return query(sql, params);
      };
      return tx;
    };
    const wrapped: SqlDialect = Object.create(db) as SqlDialect;
    wrapped.begin = async () => wrap(await db.begin());
    if (db.beginShort) wrapped.beginShort = async () => wrap(await (db.beginShort as () => Promise<SqlTransaction>).call(db));
    return wrapped;
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xporta-host-pending-'));
    statements = [];
    failInsert = undefined;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function open(name: string): ProsodySqlBackend {
    dialect = SqliteDialect.open({ database: join(dir, `${name}.sqlite`) });
    return new ProsodySqlBackend(observed(dialect), SETTINGS);
  }

  /** A richer account: a vCard, PEP bookmarks and an offline message beside the contact and messages. */
  function rich(name: string, messages = 2): DocumentEvent[] {
    const events = account(name, messages);
    const end = events.pop() as DocumentEvent;
    return [
      ...events,
      { kind: 'vcard', vcard: element('vCard', NS.vcardTemp, {}, [element('FN', NS.vcardTemp, {}, [`User ${name}`])]) },
      { kind: 'pep-node', node: 'urn:xmpp:bookmarks:1', config: [{ var: 'pubsub#persist_items', values: ['1'] }], affiliations: [], subscriptions: [] },
      { kind: 'pep-item', node: 'urn:xmpp:bookmarks:1', id: 'room@conference.example.org', payload: element('conference', 'urn:xmpp:bookmarks:1', { name: 'Room' }, []) },
      { kind: 'offline', timestamp: '2025-01-02T00:00:00Z', stanza: element('message', NS.client, { from: 'friend@example.net/x', to: `${name}@${HOST}`, type: 'chat' }, [element('body', NS.client, {}, ['hi'])]) },
      end,
    ];
  }

  async function importWith(backend: StorageBackend, events: DocumentEvent[], withUsers: boolean, dryRun = false): Promise<HostImportResult> {
    const outline = await validateHostDocument(replay(events), HOST);
    return importHostDocument(backend, HOST, replay(events), {
      mode: 'merge',
      dryRun,
      include: selectKinds(),
      createAccount: true,
      sizes: outline.sizes,
      ...(withUsers ? { users: outline.users } : {}),
      batching: BATCHING,
      reopen: () => replay(events),
      retryPolicy: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    });
  }

  async function contents(backend: StorageBackend, names: readonly string[]): Promise<unknown[]> {
    const all: unknown[] = [];
    for (const user of names) {
      all.push(await backend.readAccount({ host: HOST, user }));
      for await (const record of backend.readUser({ host: HOST, user }, { include: selectKinds() })) all.push(record);
    }
    return JSON.parse(JSON.stringify(all)) as unknown[];
  }

  it('stores exactly what account-by-account statements store, with no savepoint and a few INSERTs per group', async () => {
    const names = ['a', 'b', 'c', 'd'];
    const events = hostDocument(names.map((n) => rich(n)));
    const bySavepoints = open('statements');
    const expected = await importWith(bySavepoints, events, false);
    const storedBySavepoints = await contents(bySavepoints, names);
    await bySavepoints.close();
    statements = [];
    const inMemory = open('memory');
    const result = await importWith(inMemory, events, true);
    expect(result.users).toEqual(expected.users);
    expect(statements.filter((sql) => sql.startsWith('SAVEPOINT'))).toEqual([]);
    // Per group (a-c, d): the look-up in both tables and one INSERT into each.
    expect(statements.filter((sql) => sql.startsWith('INSERT'))).toHaveLength(4);
    const storedInMemory = await contents(inMemory, names);
    // A password is derived with a fresh salt, and PEP items get the time of the import: neither is compared.
    const comparable = (all: unknown[]): string => JSON.stringify(all).replace(/"(salt|storedKey|serverKey|published)":"[^"]*"/g, '');
    expect(storedInMemory).toHaveLength(storedBySavepoints.length);
    expect(comparable(storedInMemory)).toBe(comparable(storedBySavepoints));
    await inMemory.close();
  });

  it('an account that already has rows is merged with statements under its savepoint, beside the others', async () => {
    const backend = open('merge');
    await importWith(backend, hostDocument([account('b', 2)]), true);
    statements = [];
    const result = await importWith(backend, hostDocument([account('a'), account('b', 4), account('c')]), true);
    expect(result.progress).toMatchObject({ done: 3, failed: 0 });
    expect(statements.filter((sql) => sql.startsWith('SAVEPOINT'))).toHaveLength(1);
    expect(result.users[1]).toMatchObject({ user: `b@${HOST}`, created: false });
    let messages = 0;
    for await (const record of backend.readUser({ host: HOST, user: 'b' }, { include: selectKinds() })) if (record.kind === 'archive') messages++;
    expect(messages).toBe(4);
    await backend.close();
  });

  it('an account that fails changes nothing; a dry run keeps nothing; a group whose INSERTs fail is applied again one by one', async () => {
    const backend = open('failures');
    const broken = hostDocument([account('a'), account('b', 2, true), account('c')]);
    const outline = { sizes: [3, 4, 3], users: ['a', 'b', 'c'] };
    const result = await importHostDocument(backend, HOST, replay(broken), { mode: 'merge', dryRun: false, include: selectKinds(), createAccount: true, ...outline, batching: BATCHING });
    expect(result.users.map((u) => ('error' in u ? u.error : 'ok'))).toEqual(['ok', 'unexpected structure inside a user', 'ok']);
    expect(await backend.userExists({ host: HOST, user: 'b' })).toBe(false);
    expect(await backend.userExists({ host: HOST, user: 'c' })).toBe(true);

    const dry = await importWith(backend, hostDocument([account('d'), account('e')]), true, true);
    expect(dry.progress).toMatchObject({ done: 2, failed: 0 });
    expect(await backend.userExists({ host: HOST, user: 'd' })).toBe(false);

    failInsert = (sql) => sql.startsWith('INSERT INTO "prosodyarchive"');
    const retried = await importWith(backend, hostDocument([account('f'), account('g')]), true);
    expect(retried.progress).toMatchObject({ done: 2, failed: 0 });
    for (const user of ['f', 'g']) expect(await backend.userExists({ host: HOST, user })).toBe(true);
    await backend.close();
  });
});
