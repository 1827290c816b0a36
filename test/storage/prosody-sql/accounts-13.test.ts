/**
 * Prosody 13's account state through an import, on a real SQLite database in Prosody's schema:
 * numeric `created`/`updated`, `disabled`/`disabled_meta` kept on replace, `account_roles` for a
 * created account, and the server's moderation stores never taken from a document.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApplyOptions } from '../../../src/storage/backend.js';
import { accountToStore, newAccountRoles } from '../../../src/storage/prosody/accounts.js';
import { LuaTable } from '../../../src/storage/prosody/lua.js';
import { isOpaqueStore } from '../../../src/storage/prosody/stores.js';
import { ProsodySqlBackend } from '../../../src/storage/prosody-sql/backend.js';
import { detectProsodyVersion } from '../../../src/storage/prosody-sql/generation.js';
import { SqliteDialect } from '../../../src/storage/sql/sqlite/dialect.js';
import { readKeyval } from '../../../src/storage/prosody-sql/rows.js';
import { DATA_KINDS, NS, element, type UserRecord, type UserStart } from '../../../src/records/model.js';

const X = (name: string): string => `{${NS.prosodyExtended}}${name}`;

function doc(extra: Record<string, string> = {}): UserStart {
  return { kind: 'user', name: 'alice', password: 'alice-pw', scram: [], extraAttributes: Object.fromEntries(Object.entries(extra).map(([k, v]) => [X(k), v])) };
}

describe('accountToStore on Prosody 13', () => {
  const host = { passwordHash: 'SHA-1' as const };

  it('writes created/updated as numbers, never the strings a document carries', () => {
    const { data } = accountToStore(doc({ created: '1700000000', updated: '1700000001' }), host, { applyCredentials: true, mode: 'replace', serverVersion: '13', now: 1800000000 });
    expect(data.get('created')).toBe(1700000000);
    expect(data.get('updated')).toBe(1700000001);
  });

  it('moves updated on when the document’s credentials replace an existing account’s, so older grants end', () => {
    const existing = LuaTable.of({ password: 'x', created: 1600000000, updated: 1600000001 });
    const replaced = accountToStore(doc({ updated: '1700000001' }), host, { existing, applyCredentials: true, mode: 'replace', serverVersion: '13', now: 1800000000 }).data;
    expect([replaced.get('created'), replaced.get('updated')]).toEqual([1600000000, 1800000000]);
  });

  it('gives a new account created/updated on 13 even without them in the document, and none on 0.12', () => {
    expect(accountToStore(doc(), host, { applyCredentials: true, mode: 'replace', serverVersion: '13', now: 5 }).data.get('created')).toBe(5);
    const old = accountToStore(doc(), host, { applyCredentials: true, mode: 'replace', now: 5 }).data;
    expect(old.get('created')).toBeUndefined();
    expect(old.get('updated')).toBeUndefined();
  });

  it('repairs strings an earlier import stored', () => {
    const existing = LuaTable.of({ password: 'x', created: '1600000000', updated: '1600000001' });
    const { data } = accountToStore(doc(), host, { existing, applyCredentials: false, mode: 'merge', serverVersion: '13', now: 9 });
    expect(data.get('created')).toBe(1600000000);
    expect(data.get('updated')).toBe(1600000001);
  });

  it('an existing account keeps disabled and disabled_meta through replace and merge, whatever the document says', () => {
    const meta = LuaTable.of({ reason: 'spam', when: 1700000000 });
    const existing = LuaTable.of({ password: 'x', created: 1, updated: 2, disabled: true, disabled_meta: meta });
    for (const mode of ['replace', 'merge'] as const) {
      const { data } = accountToStore(doc({ disabled: 'false' }), host, { existing, applyCredentials: true, mode, serverVersion: '13', now: 9 });
      expect(data.get('disabled')).toBe(true);
      expect(data.get('disabled_meta')).toBe(meta);
      expect(data.get('created')).toBe(1);
    }
    const enabled = LuaTable.of({ password: 'x' });
    expect(accountToStore(doc({ disabled: 'true' }), host, { existing: enabled, applyCredentials: true, mode: 'replace', serverVersion: '13' }).data.get('disabled')).toBeUndefined();
  });

  it('a new account moved while disabled stays disabled, as a boolean with its meta table', () => {
    const { data } = accountToStore(doc({ disabled: 'true', disabled_meta: '{"reason":"moved"}' }), host, { applyCredentials: true, mode: 'replace', serverVersion: '13' });
    expect(data.get('disabled')).toBe(true);
    expect((data.get('disabled_meta') as LuaTable).get('reason')).toBe('moved');
  });

  it('newAccountRole: prosody:member unless configured; null or the implicit role stores nothing', () => {
    expect(newAccountRoles(host)?.get('_default')).toBe('prosody:member');
    expect(newAccountRoles({ ...host, newAccountRole: 'prosody:admin' })?.get('_default')).toBe('prosody:admin');
    expect(newAccountRoles({ ...host, newAccountRole: null })).toBeUndefined();
    expect(newAccountRoles({ ...host, newAccountRole: 'prosody:registered' })).toBeUndefined();
  });

  it('roles, pending deletion and moderation flags are neither exported nor imported as user data', () => {
    for (const store of ['account_roles', 'accounts_cleanup', 'account_flags']) expect(isOpaqueStore(store, false)).toBe(false);
  });
});

describe('ProsodySqlBackend on a Prosody 13 SQLite database', () => {
  let dir: string;
  let database: string;
  const ALL = new Set(DATA_KINDS);
  const options = (o: Partial<ApplyOptions> = {}): ApplyOptions => ({ mode: 'replace', dryRun: false, include: ALL, createAccount: true, ...o });
  async function* iterate(records: readonly UserRecord[]): AsyncIterable<UserRecord> {
    yield* records;
  }
  const owner = { host: 'localhost', user: 'alice' };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xporta-p13-'));
    database = join(dir, 'prosody.sqlite');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is told 13 by prosody_unique_index; a created account gets account_roles, a replaced one keeps its state', async () => {
    const backend = new ProsodySqlBackend({ dialect: 'sqlite', database, hosts: { localhost: { passwordHash: 'SHA-1' } } });
    const db = SqliteDialect.open({ database });
    try {
      await backend.ensureSchema();
      expect(await detectProsodyVersion(db)).toBeUndefined();
      // What Prosody 13 does on its first connection.
      await db.run(`CREATE UNIQUE INDEX IF NOT EXISTS "prosody_unique_index" ON "prosody" ("host", "user", "store", "key")`);
      expect(await detectProsodyVersion(db)).toBe('13');

      const roles: UserRecord = {
        kind: 'opaque',
        element: element('store', 'urn:xporta:prosody-store:0', { name: 'account_roles' }, [element('entry', 'urn:xporta:prosody-store:0', { key: '_default', type: 'string' }, ['prosody:admin'])]),
      };
      const first = await backend.applyUser(owner, doc({ created: '1700000000' }), iterate([roles]), options());
      expect(first.created).toBe(true);
      expect(first.skipped).toContainEqual({ kind: 'other', reason: 'store is not importable', detail: 'account_roles' });
      expect((await readKeyval(db, owner, 'account_roles'))?.get('_default')).toBe('prosody:member');
      const account = await readKeyval(db, owner, 'accounts');
      expect(account?.get('created')).toBe(1700000000);
      expect(typeof account?.get('updated')).toBe('number');

      // An admin disables the account and makes it an admin; a replace import must keep both.
      await db.run(`UPDATE "prosody" SET "value" = 'prosody:admin' WHERE "store" = 'account_roles' AND "key" = '_default'`);
      await db.run(`INSERT INTO "prosody" ("host", "user", "store", "key", "type", "value") VALUES ('localhost', 'alice', 'accounts', 'disabled', 'boolean', 'true')`);
      const second = await backend.applyUser(owner, doc(), iterate([roles]), options({ createAccount: false }));
      expect(second.created).toBe(false);
      const after = await readKeyval(db, owner, 'accounts');
      expect(after?.get('disabled')).toBe(true);
      expect(after?.get('created')).toBe(1700000000);
      expect((await readKeyval(db, owner, 'account_roles'))?.get('_default')).toBe('prosody:admin');
      // …and nothing of it is exported as user data.
      const exported = [];
      for await (const r of backend.readUser(owner, { include: ALL })) exported.push(r);
      expect(JSON.stringify(exported)).not.toContain('account_roles');
    } finally {
      await db.close();
      await backend.close();
    }
  });
});
