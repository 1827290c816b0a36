/**
 * The storage-independent import engine against an in-memory storage that records every
 * primitive call: what the SQL and files backends are asked to do, and in which order.
 */
import { describe, expect, it } from 'vitest';
import type { ApplyOptions } from '../../../src/storage/backend.js';
import type { ArchiveItem } from '../../../src/storage/prosody/archive.js';
import { ProsodyImport, type MapEntry } from '../../../src/storage/prosody/import.js';
import { LuaTable, type LuaValue } from '../../../src/storage/prosody/lua.js';
import { PEP_STORE } from '../../../src/storage/prosody/pep.js';
import type { DataKind, UserRecord, UserStart } from '../../../src/records/model.js';

class MemoryImport extends ProsodyImport {
  readonly calls: string[] = [];
  readonly stores = new Map<string, LuaTable>();

  constructor(options: ApplyOptions, stored: Record<string, LuaTable> = {}) {
    super({ host: 'localhost', user: 'alice' }, { host: { passwordHash: 'SHA-1' }, importStores: new Set(['custom']) }, options);
    for (const [store, table] of Object.entries(stored)) this.stores.set(store, table);
  }

  protected async readStore(store: string): Promise<LuaTable | undefined> {
    this.calls.push(`read ${store}`);
    return this.stores.get(store);
  }
  protected async writeStore(store: string, data: LuaTable): Promise<void> {
    this.calls.push(`write ${store}`);
    this.stores.set(store, data);
  }
  protected async setMapKey(store: string, key: string, _value: LuaValue): Promise<void> {
    this.calls.push(`set ${store} ${key}`);
  }
  protected async mergeStore(store: string, _data: LuaTable): Promise<void> {
    this.calls.push(`merge ${store}`);
  }
  protected async mergeRoster(_stored: LuaTable | undefined, entries: readonly MapEntry[], _meta: LuaTable): Promise<void> {
    this.calls.push(`merge roster ${entries.map((e) => e.key).join(',')}`);
  }
  protected async addMissingMapKeys(store: string, keys: readonly string[], _create: (key: string) => LuaValue): Promise<void> {
    this.calls.push(`add missing ${store} ${keys.join(',')}`);
  }
  protected async clearStore(store: string): Promise<void> {
    this.calls.push(`clear ${store}`);
  }
  protected async clearArchive(store: string): Promise<void> {
    this.calls.push(`clear archive ${store}`);
  }
  protected async listStores(archive: boolean): Promise<readonly string[]> {
    return archive ? ['pep_urn:a', 'custom', 'archive2'] : ['custom', 'accounts'];
  }
  protected async appendArchiveItem(store: string, item: ArchiveItem): Promise<void> {
    this.calls.push(`append ${store} ${item.key}`);
  }
  protected async finishArchives(): Promise<void> {
    this.calls.push('finish archives');
  }
  protected async finishStores(): Promise<void> {
    this.calls.push('finish stores');
  }
}

const account: UserStart = { kind: 'user', name: 'alice', password: 'secret', scram: [], extraAttributes: {} };
const payload = { name: 'x', xmlns: 'urn:x', attrs: {}, children: ['y'] };

function options(mode: 'merge' | 'replace', include: DataKind[], createAccount = true): ApplyOptions {
  return { mode, dryRun: false, include: new Set(include), createAccount };
}

async function* recordsOf(...records: UserRecord[]): AsyncIterable<UserRecord> {
  yield* records;
}

describe('ProsodyImport', () => {
  it('replace: clears the selected kinds through the primitives, then writes in order', async () => {
    const run = new MemoryImport(options('replace', ['roster', 'pep', 'other']));
    const report = await run.run(
      account,
      recordsOf(
        { kind: 'roster', items: [{ jid: 'bob@localhost', subscription: 'both', groups: [] }] },
        { kind: 'pep-node', node: 'urn:a', config: [], affiliations: [], subscriptions: [] },
        { kind: 'pep-item', node: 'urn:a', id: '1', payload },
        { kind: 'pep-item', node: 'urn:b', id: '2', payload },
        { kind: 'vcard', vcard: payload },
      ),
    );
    expect(run.calls).toEqual([
      'read accounts',
      'write accounts',
      'read roster',
      'clear roster',
      `clear ${PEP_STORE}`,
      'clear archive pep_urn:a',
      'clear archive custom',
      'clear custom',
      `set ${PEP_STORE} urn:a`,
      'append pep_urn:a 1',
      'append pep_urn:b 2',
      'finish archives',
      'write roster',
      // Only the node no record declared is checked and created.
      `add missing ${PEP_STORE} urn:b`,
      'finish stores',
    ]);
    expect(report).toMatchObject({ user: 'alice@localhost', created: true, counts: { roster: 1, pep: 3 } });
    expect(report.skipped).toEqual([{ kind: 'vcard', reason: 'kind not included', detail: '1 record(s)' }]);
  });

  it('merge: an unknown user is an error unless it may be created; the roster is merged', async () => {
    await expect(new MemoryImport(options('merge', ['roster'], false)).run(account, recordsOf())).rejects.toMatchObject({ code: 'user-not-found' });

    const stored = { accounts: LuaTable.of({ password: 'old' }), roster: LuaTable.of({ 'carol@localhost': LuaTable.of({}) }) };
    const run = new MemoryImport(options('merge', ['roster']), stored);
    const report = await run.run(account, recordsOf({ kind: 'roster', items: [{ jid: 'bob@localhost', subscription: 'to', groups: [] }] }));
    expect(run.calls).toEqual(['read accounts', 'read roster', 'finish archives', 'merge roster bob@localhost', 'finish stores']);
    expect(report.created).toBe(false);
  });
});
