/** ProsodyFilesBackend against real directories: reading, importing, merge rules, atomicity. */
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readFile, readdir, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApplyOptions } from '../../../src/storage/backend.js';
import { StorageError } from '../../../src/storage/backend.js';
import { ProsodyFilesBackend, type ProsodyFilesOptions } from '../../../src/storage/prosody-files/backend.js';
import { parseDatFile } from '../../../src/storage/prosody-files/lua-parse.js';
import { recoverJournals } from '../../../src/storage/prosody-files/journal.js';
import type { LuaTable } from '../../../src/storage/prosody/lua.js';
import {
  DATA_KINDS,
  NS,
  element,
  type ArchiveRecord,
  type DataKind,
  type PepItemRecord,
  type UserRecord,
  type UserStart,
} from '../../../src/records/model.js';
import { LUA, luaAvailable } from '../../support/storage/lua.js';
import { FIXTURES_DIR } from '../../support/paths.js';

const FIXTURE_DATA = path.join(FIXTURES_DIR, 'prosody-files/data');
const ALL = new Set<DataKind>(DATA_KINDS);

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function* stream(list: readonly UserRecord[]): AsyncGenerator<UserRecord> {
  yield* list;
}

/**
 * Every file under `dir` with its bytes; the commit lock files (`.xporta-locks/`) aside: a crash
 * image holds the dead commit's, which the next holder takes over (account-lock.ts).
 */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory() && entry.name === '.xporta-locks') continue;
      if (entry.isDirectory()) await walk(full);
      else out.set(path.relative(dir, full), (await readFile(full)).toString('base64'));
    }
  };
  await walk(dir);
  return out;
}

function options(overrides: Partial<ApplyOptions> = {}): ApplyOptions {
  return { mode: 'merge', dryRun: false, include: ALL, createAccount: true, ...overrides };
}

const ACCOUNT: UserStart = { kind: 'user', name: 'dave', password: 'dave-pw', scram: [], extraAttributes: {} };

function message(from: string, to: string, body: string, id: string) {
  return element('message', NS.client, { from, to, type: 'chat', id }, [element('body', NS.client, {}, [body])]);
}

function archive(id: string, seconds: number, body: string): ArchiveRecord {
  return {
    kind: 'archive',
    id,
    timestamp: new Date(seconds * 1000).toISOString().replace('.000Z', 'Z'),
    with: 'bob@localhost',
    stanza: message('dave@localhost/phone', 'bob@localhost', body, `m-${id}`),
  };
}

function pepItem(node: string, id: string, text: string): PepItemRecord {
  return {
    kind: 'pep-item',
    node,
    id,
    payload: element('note', 'urn:example:notes', {}, [text]),
    publisher: 'dave@localhost',
    published: '2026-11-20T10:00:00Z',
  };
}

const FULL: UserRecord[] = [
  {
    kind: 'roster',
    version: '3',
    items: [
      { jid: 'bob@localhost', name: 'Bob Ünïcödé', subscription: 'both', groups: ['Friends', 'Work'] },
      { jid: 'carol@localhost', subscription: 'none', ask: 'subscribe', groups: [] },
      { jid: 'erin@example.test', subscription: 'from', approved: true, groups: [] },
    ],
  },
  { kind: 'pending-subscription', from: 'frank@localhost', payload: [element('nick', 'http://jabber.org/protocol/nick', {}, ['Frank'])] },
  { kind: 'vcard', vcard: element('vCard', NS.vcardTemp, {}, [element('FN', NS.vcardTemp, {}, ['Dave 🎻 "Quoted" \\ O’Brien'])]) },
  { kind: 'private', element: element('prefs', 'urn:example:prefs', { version: '2' }, [element('theme', 'urn:example:prefs', {}, ['dark'])]) },
  {
    kind: 'pep-node',
    node: 'urn:example:notes',
    config: [
      { var: 'pubsub#max_items', type: 'text-single', values: ['10'] },
      { var: 'pubsub#persist_items', type: 'boolean', values: ['1'] },
      { var: 'pubsub#access_model', type: 'list-single', values: ['presence'] },
    ],
    affiliations: [{ jid: 'dave@localhost', affiliation: 'owner' }],
    subscriptions: [{ jid: 'bob@localhost', subscription: 'subscribed' }],
  },
  pepItem('urn:example:notes', 'n1', 'first note'),
  pepItem('urn:example:notes', 'n2', 'second\nnote\twith tabs'),
  archive('a1', 1795368740, 'hello'),
  archive('a2', 1795368741, '5 < 6 && "x" \u0000-free Ελληνικά'),
  { kind: 'offline', timestamp: '2026-11-22T17:00:00Z', stanza: message('bob@localhost/pc', 'dave@localhost', 'while you were out', 'o1') },
  { kind: 'blocklist', items: ['spam@spam.example', 'troll@example.net/phone'] },
  {
    kind: 'privacy',
    defaultList: 'work',
    lists: [{ name: 'work', items: [{ type: 'group', value: 'Work', action: 'allow', order: 10, stanzas: ['message'] }] }],
  },
  {
    kind: 'opaque',
    element: element('store', 'urn:xporta:prosody-store:0', { name: 'account_details' }, [
      element('entry', 'urn:xporta:prosody-store:0', { key: 'email', type: 'string' }, ['dave@mail.example']),
      element('entry', 'urn:xporta:prosody-store:0', { key: 'registered', type: 'number' }, ['1795368035']),
    ]),
  },
];

let dir: string;
let data: string;
const backends: ProsodyFilesBackend[] = [];

function backend(extra: Partial<ProsodyFilesOptions> = {}): ProsodyFilesBackend {
  const b = new ProsodyFilesBackend({ path: data, hosts: { localhost: { passwordHash: 'SHA-1' } }, ...extra });
  backends.push(b);
  return b;
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'xporta-files-'));
  data = path.join(dir, 'data');
  await cp(FIXTURE_DATA, data, { recursive: true });
});
afterEach(async () => {
  await Promise.all(backends.splice(0).map((b) => b.close()));
  await rm(dir, { recursive: true, force: true });
});

describe('reading files Prosody wrote', () => {
  it('lists hosts and users and reads SCRAM credentials', async () => {
    const b = backend();
    await b.ping();
    expect(await b.listHosts()).toEqual(['localhost']);
    expect(await collect(b.listUsers('localhost'))).toEqual(['alice', 'carol', 'zoë.o_brien+tag%~']);
    expect(await b.userExists({ host: 'localhost', user: 'alice' })).toBe(true);
    expect(await b.userExists({ host: 'localhost', user: 'nobody' })).toBe(false);
    const account = await b.readAccount({ host: 'localhost', user: 'alice' });
    expect(account?.scram).toEqual([
      {
        mechanism: 'SCRAM-SHA-1',
        iterationCount: 10000,
        salt: Buffer.from('66fac4e5-f6b9-4019-9560-c2b55f3a0642').toString('base64'),
        storedKey: Buffer.from('743454b6d2bd17f83beb2e1aba7b73ce86d9a5b8', 'hex').toString('base64'),
        serverKey: Buffer.from('323390f297e66a6d32f82d4865a56692ccf94f93', 'hex').toString('base64'),
      },
    ]);
    expect(await b.readAccount({ host: 'localhost', user: 'nobody' })).toBeNull();
  });

  it('reads roster with [false] metadata, pending requests and the vCard', async () => {
    const records = await collect(backend().readUser({ host: 'localhost', user: 'carol' }, { include: ALL }));
    expect(records[0]).toEqual({
      kind: 'roster',
      version: '5',
      items: [
        { jid: 'alice@example.test', subscription: 'none', approved: true, groups: [] },
        { jid: 'alice@localhost', subscription: 'from', groups: [] },
        { jid: 'news@feeds.example.org', name: 'News bot', subscription: 'none', groups: ['Bots'] },
      ],
    });
    expect(records[1]).toEqual({
      kind: 'pending-subscription',
      from: 'bob@localhost',
      payload: [element('nick', 'http://jabber.org/protocol/nick', {}, ['Bob Example'])],
    });
    expect(records[2]).toMatchObject({ kind: 'vcard', vcard: { name: 'vCard', xmlns: NS.vcardTemp } });
    expect(JSON.stringify(records[2])).toContain('Carol Ünïcödé 🎻');
  });

  it('reads the archive with keys, times, peers and stanzas (stamp stripped)', async () => {
    const records = await collect(backend().readUser({ host: 'localhost', user: 'alice' }, { include: new Set(['archive']) }));
    expect(records).toHaveLength(2);
    expect(records[0]).toEqual({
      kind: 'archive',
      id: '27_CC26HJJLWquPpf4XbdKJX',
      timestamp: '2026-11-22T17:32:20Z',
      with: 'bob@localhost',
      stanza: element('message', NS.client, { from: 'alice@localhost/populate', id: 'msg-0-f87f002a', 'xml:lang': 'en', to: 'bob@localhost', type: 'chat' }, [
        element('body', NS.client, {}, ['over tomorrow bookmark archive.']),
        element('origin-id', 'urn:xmpp:sid:0', { id: 'f87f002a-5b1c-4c8e-9d0e-0a1b2c3d4e5f' }),
      ]),
    });
    expect(records[1]).toMatchObject({ with: 'zoë.o_brien+tag%~@localhost', timestamp: '2026-11-22T17:32:21Z' });
  });

  it('reads other stores as opaque records', async () => {
    const records = await collect(backend().readUser({ host: 'localhost', user: 'zoë.o_brien+tag%~' }, { include: ALL }));
    expect(records).toHaveLength(1);
    const [record] = records;
    if (record?.kind !== 'opaque') throw new Error('expected an opaque record');
    const el = record.element;
    expect(el.attrs.name).toBe('account_details');
    expect(JSON.stringify(el)).toContain('Zoë O’Brien-Müller');
  });

  it('reports broken files as invalid data, naming the file and line', async () => {
    await appendFile(path.join(data, 'localhost/archive/alice.list'), 'item({\n\t["key"] = "x";\n');
    const b = backend();
    const err = await collect(b.readUser({ host: 'localhost', user: 'alice' }, { include: new Set(['archive']) })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('invalid-data');
    expect((err as Error).message).toMatch(/localhost\/archive\/alice\.list: .*line/);
    await writeFile(path.join(data, 'localhost/roster/alice.dat'), 'return os.execute("touch /tmp/pwned");\n');
    await expect(collect(b.readUser({ host: 'localhost', user: 'alice' }, { include: new Set(['roster']) }))).rejects.toThrow(/unexpected name/);
  });
});

describe('importing', () => {
  const ref = { host: 'localhost', user: 'dave' };

  it('round-trips every kind through the files', async () => {
    const b = backend();
    const report = await b.applyUser(ref, ACCOUNT, stream(FULL), options({ mode: 'replace' }));
    expect(report).toMatchObject({ created: true, dryRun: false, warnings: [], skipped: [], unsupported: [] });
    expect(report.counts).toEqual({ credentials: 1, roster: 2, vcard: 1, private: 1, pep: 3, archive: 2, offline: 1, blocklist: 1, privacy: 1, other: 1 });

    const account = await b.readAccount(ref);
    expect(account?.scram).toHaveLength(1);
    expect(account?.scram[0]?.mechanism).toBe('SCRAM-SHA-1');

    const back = await collect(b.readUser(ref, { include: ALL }));
    const byKind = (kind: string) => back.filter((r) => r.kind === kind);
    expect(byKind('roster')).toEqual([
      {
        kind: 'roster',
        version: '3',
        items: [
          { jid: 'bob@localhost', name: 'Bob Ünïcödé', subscription: 'both', groups: ['Friends', 'Work'] },
          { jid: 'carol@localhost', subscription: 'none', ask: 'subscribe', groups: [] },
          { jid: 'erin@example.test', subscription: 'from', approved: true, groups: [] },
        ],
      },
    ]);
    expect(byKind('pending-subscription')).toEqual([FULL[1]]);
    expect(byKind('vcard')).toEqual([FULL[2]]);
    expect(byKind('private')).toEqual([FULL[3]]);
    expect(byKind('pep-node')).toEqual([FULL[4]]);
    expect(byKind('pep-item')).toEqual([FULL[5], FULL[6]]);
    expect(byKind('archive')).toEqual([FULL[7], FULL[8]]);
    expect(byKind('offline')).toEqual([FULL[9]]);
    expect(byKind('blocklist')).toEqual([FULL[10]]);
    expect(byKind('privacy')).toEqual([FULL[11]]);
    expect(byKind('opaque')).toHaveLength(1);
    expect(JSON.stringify(byKind('opaque'))).toContain('dave@mail.example');

    // The files look like Prosody's: e.g. the archive item with key/when/with and attr.stamp.
    const list = await readFile(path.join(data, 'localhost/archive/dave.list'), 'latin1');
    expect(list.startsWith('item({\n\t{\n\t\t"hello";\n')).toBe(true);
    expect(list).toContain('\t["key"] = "a1";\n\t["when"] = 1795368740;\n\t["with"] = "bob@localhost";\n');
    expect(list).toContain('["stamp"] = "2026-11-22T17:32:20Z";');
    const roster = parseDatFile(await readFile(path.join(data, 'localhost/roster/dave.dat'))) as LuaTable;
    expect((roster.get(false) as LuaTable).get('version')).toBe(3);
  });

  it('refuses an unknown user without createAccount, and an unconfigured host', async () => {
    const b = backend();
    await expect(b.applyUser(ref, ACCOUNT, stream([]), options({ createAccount: false }))).rejects.toMatchObject({ code: 'user-not-found' });
    await expect(b.applyUser({ host: 'other.example', user: 'x' }, ACCOUNT, stream([]), options())).rejects.toMatchObject({ code: 'invalid-data' });
  });

  it('merges: archive deduplicated by id, PEP items replaced by id, roster and blocklist united', async () => {
    const b = backend();
    await b.applyUser(ref, ACCOUNT, stream(FULL), options({ mode: 'replace' }));
    const before = await readFile(path.join(data, 'localhost/archive/dave.list'));
    const second: UserRecord[] = [
      { kind: 'roster', items: [{ jid: 'bob@localhost', name: 'Bobby', subscription: 'both', groups: [] }, { jid: 'gina@localhost', subscription: 'to', groups: [] }] },
      archive('a2', 1795368741, 'a different body for an id already stored'),
      archive('a3', 1795368800, 'new'),
      archive('a3', 1795368801, 'same id again in the document'),
      pepItem('urn:example:notes', 'n1', 'first note, edited'),
      pepItem('urn:example:other', 'x1', 'on a node that does not exist yet'),
      { kind: 'blocklist', items: ['spam@spam.example', 'new@spam.example'] },
      { kind: 'private', element: element('prefs', 'urn:example:prefs', {}, [element('theme', 'urn:example:prefs', {}, ['light'])]) },
    ];
    const report = await b.applyUser(ref, ACCOUNT, stream(second), options({ mode: 'merge', include: new Set(DATA_KINDS.filter((k) => k !== 'credentials')) }));
    expect(report.created).toBe(false);
    expect(report.counts.archive).toBe(1);
    expect(report.skipped).toContainEqual({ kind: 'archive', reason: 'already stored', detail: '2 record(s)' });

    const after = await readFile(path.join(data, 'localhost/archive/dave.list'));
    // One pass: the stored items stay byte for byte, the new one is appended.
    expect(after.subarray(0, before.length).equals(before)).toBe(true);

    const back = await collect(b.readUser(ref, { include: ALL }));
    const archived = back.filter((r): r is ArchiveRecord => r.kind === 'archive');
    expect(archived.map((r) => r.id)).toEqual(['a1', 'a2', 'a3']);
    expect(JSON.stringify(archived[1])).not.toContain('different body');
    const roster = back.find((r) => r.kind === 'roster');
    if (roster?.kind !== 'roster') throw new Error('expected a roster');
    expect(roster.version).toBe('4');
    expect(roster.items.map((i) => [i.jid, i.name])).toEqual([
      ['bob@localhost', 'Bobby'],
      ['carol@localhost', undefined],
      ['erin@example.test', undefined],
      ['gina@localhost', undefined],
    ]);
    expect(back.filter((r) => r.kind === 'pending-subscription')).toHaveLength(1);
    const items = back.filter((r): r is PepItemRecord => r.kind === 'pep-item');
    expect(items.map((i) => [i.node, i.id])).toEqual([
      ['urn:example:notes', 'n2'],
      ['urn:example:notes', 'n1'],
      ['urn:example:other', 'x1'],
    ]);
    expect(JSON.stringify(items[1])).toContain('first note, edited');
    expect(back.filter((r) => r.kind === 'pep-node').map((r) => (r as { node: string }).node)).toEqual(['urn:example:notes', 'urn:example:other']);
    expect(back.find((r) => r.kind === 'blocklist')).toEqual({ kind: 'blocklist', items: ['new@spam.example', 'spam@spam.example', 'troll@example.net/phone'] });
    expect(JSON.stringify(back.filter((r) => r.kind === 'private'))).toContain('light');
    expect(back.filter((r) => r.kind === 'offline')).toHaveLength(1);
  });

  it('removes the Prosody 13 .lidx beside every .list it appends to or rewrites, and leaves others', async () => {
    const b = backend();
    await b.applyUser(ref, ACCOUNT, stream(FULL), options({ mode: 'replace' }));
    const lidx = (store: string, user = 'dave'): string => path.join(data, `localhost/${store}/${user}.lidx`);
    // What Prosody 13 leaves after reading or appending: an index beside each list.
    for (const store of ['archive', 'offline', 'pep_urn%3aexample%3anotes']) await writeFile(lidx(store), 'stale index');
    await writeFile(lidx('archive', 'someone'), 'not ours');
    await b.applyUser(ref, ACCOUNT, stream([archive('a9', 1795368900, 'appended')]), options({ mode: 'merge', include: new Set<DataKind>(['archive']) }));
    const files = await snapshot(data);
    expect(files.has('localhost/archive/dave.lidx')).toBe(false);
    // Lists this import did not touch keep their index; so does another user's.
    expect(files.has('localhost/offline/dave.lidx')).toBe(true);
    expect(files.has('localhost/archive/someone.lidx')).toBe(true);
    await b.applyUser(ref, ACCOUNT, stream([pepItem('urn:example:notes', 'n1', 'edited')]), options({ mode: 'merge', include: new Set<DataKind>(['pep']) }));
    expect((await snapshot(data)).has('localhost/pep_urn%3aexample%3anotes/dave.lidx')).toBe(false);
    await b.applyUser(ref, ACCOUNT, stream([]), options({ mode: 'replace', include: new Set<DataKind>(['offline']) }));
    expect((await snapshot(data)).has('localhost/offline/dave.lidx')).toBe(false);
  });

  it('a dry run leaves a .lidx in place', async () => {
    const b = backend();
    await b.applyUser(ref, ACCOUNT, stream(FULL), options({ mode: 'replace' }));
    const index = path.join(data, 'localhost/archive/dave.lidx');
    await writeFile(index, 'index');
    await b.applyUser(ref, ACCOUNT, stream([archive('a9', 1795368900, 'x')]), options({ dryRun: true }));
    expect(await readFile(index, 'utf8')).toBe('index');
  });

  it('an export snapshot pins the account in a directory of links, removed on close; one a dead process left is removed by recover', async () => {
    const b = backend();
    await b.applyUser(ref, ACCOUNT, stream(FULL), options({ mode: 'replace' }));
    const snapshots = async () => (await readdir(data)).filter((name) => name.startsWith('.xporta-snapshot-'));
    const snap = await b.snapshot();
    expect((await snap.readAccount(ref))?.name).toBe('dave');
    expect(await snapshots()).toHaveLength(1);
    await b.applyUser(ref, { ...ACCOUNT, name: 'dave' }, stream([]), options({ mode: 'replace' }));
    let archived = 0;
    for await (const record of snap.readUser(ref, { include: ALL })) if (record.kind === 'archive') archived++;
    expect(archived).toBeGreaterThan(0);
    await snap.close();
    expect(await snapshots()).toEqual([]);

    // pid 2^22+1 is above Linux's pid_max default: no such process.
    const dead = path.join(data, '.xporta-snapshot-4194305-0123456789abcdef01');
    const live = path.join(data, `.xporta-snapshot-${process.pid}-0123456789abcdef01`);
    for (const dir of [dead, live]) await cp(path.join(data, 'localhost'), path.join(dir, 'localhost'), { recursive: true });
    await b.recover();
    expect(await snapshots()).toEqual([path.basename(live)]);
    await rm(live, { recursive: true });
  });

  it('de-duplicates the same past the in-memory bound, from a scratch file it then removes', async () => {
    const scratchFiles = async () => (await readdir(data)).filter((name) => name.startsWith('.xporta-scratch-'));
    const b = backend({ seenInMemory: 3 });
    await b.applyUser(ref, ACCOUNT, stream(FULL), options({ mode: 'replace' }));
    const ids = ['a1', 'b1', 'b2', 'b3', 'b2', 'b4', 'a2', 'b5', 'b6', 'b7', 'b8', 'b8', 'b9'];
    const second = ids.map((id, i) => archive(id, 1795368800 + i, `body ${i}`));
    const merge = options({ mode: 'merge', include: new Set<DataKind>(['archive']) });

    const dry = await b.applyUser(ref, ACCOUNT, stream(second), { ...merge, dryRun: true });
    expect(await scratchFiles()).toEqual([]);

    async function* failing(): AsyncGenerator<UserRecord> {
      yield* second;
      throw new Error('the document broke off');
    }
    await expect(b.applyUser(ref, ACCOUNT, failing(), merge)).rejects.toThrow('the document broke off');
    expect(await scratchFiles()).toEqual([]);

    const report = await b.applyUser(ref, ACCOUNT, stream(second), merge);
    expect(report.counts.archive).toBe(9);
    expect(report.skipped).toContainEqual({ kind: 'archive', reason: 'already stored', detail: '4 record(s)' });
    expect(dry.counts).toEqual(report.counts);
    expect(dry.skipped).toEqual(report.skipped);
    expect(await scratchFiles()).toEqual([]);

    const stored = (await collect(b.readUser(ref, { include: new Set<DataKind>(['archive']) }))) as ArchiveRecord[];
    expect(stored.map((r) => r.id)).toEqual(['a1', 'a2', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7', 'b8', 'b9']);
    // The first of each repeated id is kept, as below the bound.
    expect(JSON.stringify(stored.find((r) => r.id === 'b2'))).toContain('body 2');
  });

  it('merging offline messages skips one stored with the same time and stanza', async () => {
    const b = backend();
    await b.applyUser(ref, ACCOUNT, stream(FULL), options({ mode: 'replace' }));
    const report = await b.applyUser(ref, ACCOUNT, stream([FULL[9] as UserRecord, { ...(FULL[9] as object), timestamp: '2026-11-22T18:00:00Z' } as UserRecord]), options());
    expect(report.counts.offline).toBe(1);
    expect((await collect(b.readUser(ref, { include: new Set(['offline']) }))).length).toBe(2);
  });

  it('replace empties the selected kinds only', async () => {
    const b = backend();
    await b.applyUser(ref, ACCOUNT, stream(FULL), options({ mode: 'replace' }));
    await b.applyUser(ref, ACCOUNT, stream([archive('z9', 1795369999, 'only this')]), options({ mode: 'replace', include: new Set(['archive', 'pep', 'blocklist']) }));
    const back = await collect(b.readUser(ref, { include: ALL }));
    expect(back.filter((r) => r.kind === 'archive').map((r) => (r as ArchiveRecord).id)).toEqual(['z9']);
    expect(back.filter((r) => r.kind.startsWith('pep'))).toEqual([]);
    expect(back.filter((r) => r.kind === 'blocklist')).toEqual([]);
    expect(back.filter((r) => r.kind === 'roster')).toHaveLength(1);
    expect(back.filter((r) => r.kind === 'vcard')).toHaveLength(1);
    const tree = [...(await snapshot(data)).keys()];
    expect(tree.filter((f) => f.includes('dave'))).not.toContain('localhost/blocklist/dave.dat');
    expect(tree.some((f) => f.startsWith('localhost/pep_') && f.endsWith('dave.list'))).toBe(false);
  });

  it('dry run: same report, nothing written', async () => {
    const before = await snapshot(dir);
    const dry = await backend().applyUser(ref, ACCOUNT, stream(FULL), options({ mode: 'replace', dryRun: true }));
    expect(await snapshot(dir)).toEqual(before);
    const real = await backend().applyUser(ref, ACCOUNT, stream(FULL), options({ mode: 'replace' }));
    expect({ ...dry, dryRun: false }).toEqual(real);
    // And a dry merge on top of existing data.
    const stored = await snapshot(dir);
    await backend().applyUser(ref, ACCOUNT, stream([archive('new', 1795369999, 'x'), ...FULL]), options({ dryRun: true }));
    expect(await snapshot(dir)).toEqual(stored);
  });

  it('writes archives beyond 10,000 items in one pass and warns', async () => {
    const b = backend();
    const many = async function* (): AsyncGenerator<UserRecord> {
      for (let i = 0; i < 10_001; i++) yield archive(`id-${i}`, 1795360000 + i, `message ${i}`);
    };
    const started = Date.now();
    const report = await b.applyUser(ref, ACCOUNT, many(), options({ mode: 'replace', include: new Set(['archive', 'credentials']) }));
    expect(report.counts.archive).toBe(10_001);
    expect(report.warnings).toHaveLength(1);
    expect(report.warnings[0]).toMatch(/^archive now holds 10001 items, more than Prosody's storage_archive_item_limit \(10000, the default\): all were written, but at the next message it archives, mod_mam truncates the archive to the newest 9900/);
    let n = 0;
    for await (const r of b.readUser(ref, { include: new Set(['archive']) })) {
      expect((r as ArchiveRecord).id).toBe(`id-${n}`);
      n++;
    }
    expect(n).toBe(10_001);
    expect(Date.now() - started).toBeLessThan(30_000);
    const small = await backend({ archiveItemLimit: 3 }).applyUser({ host: 'localhost', user: 'erin' }, ACCOUNT, stream([archive('1', 1, 'a'), archive('2', 2, 'b'), archive('3', 3, 'c')]), options());
    expect(small.warnings.filter((w) => w.includes('storage_archive_item_limit'))).toEqual([]);
  });
});

describe('file ownership and modes', () => {
  it('keeps a replaced file’s mode and gives new files their directory’s, without execute bits', async () => {
    const { chmod, mkdir, stat } = await import('node:fs/promises');
    // Prosody runs with umask 027: directories 0750, files 0640.
    await chmod(path.join(data, 'localhost'), 0o750);
    await chmod(path.join(data, 'localhost/accounts'), 0o750);
    await chmod(path.join(data, 'localhost/accounts/alice.dat'), 0o600);
    await mkdir(path.join(data, 'localhost/blocklist'), { mode: 0o750 });
    await chmod(path.join(data, 'localhost/blocklist'), 0o750);
    const b = backend();
    const block: UserRecord[] = [{ kind: 'blocklist', items: ['x@example.net'] }];
    await b.applyUser({ host: 'localhost', user: 'alice' }, { ...ACCOUNT, name: 'alice' }, stream(block), options());
    await b.applyUser({ host: 'localhost', user: 'newbie' }, { ...ACCOUNT, name: 'newbie' }, stream(block), options());
    const mode = async (p: string): Promise<number> => (await stat(path.join(data, p))).mode & 0o777;
    expect(await mode('localhost/accounts/alice.dat')).toBe(0o600);
    expect(await mode('localhost/accounts/newbie.dat')).toBe(0o640);
    expect(await mode('localhost/blocklist/alice.dat')).toBe(0o640);
    // A store directory Prosody never made yet is created like its parent.
    await b.applyUser({ host: 'localhost', user: 'newbie' }, { ...ACCOUNT, name: 'newbie' }, stream([FULL[9] as UserRecord]), options());
    expect(await mode('localhost/offline')).toBe(0o750);
    expect(await mode('localhost/offline/newbie.list')).toBe(0o640);
  });
});

describe('atomicity', () => {
  const ref = { host: 'localhost', user: 'alice' };
  const EDIT: UserRecord[] = [
    { kind: 'roster', items: [{ jid: 'zed@localhost', subscription: 'both', groups: [] }] },
    FULL[2] as UserRecord,
    FULL[3] as UserRecord,
    FULL[4] as UserRecord,
    FULL[5] as UserRecord,
    archive('fresh', 1795369000, 'new message'),
    FULL[10] as UserRecord,
  ];
  const ACCOUNT_ALICE: UserStart = { ...ACCOUNT, name: 'alice', password: 'new-pw' };

  it('a failure before any rename, or at any rename, leaves every file byte-identical', async () => {
    const before = await snapshot(dir);
    // How many files the import changes.
    let targets = 0;
    const probe = backend({ faults: { beforeRename: (i) => void (targets = Math.max(targets, i + 1)) } });
    await probe.applyUser({ host: 'localhost', user: 'probe' }, ACCOUNT_ALICE, stream(EDIT), options());
    await rm(path.join(data, 'localhost'), { recursive: true });
    await cp(path.join(FIXTURE_DATA, 'localhost'), path.join(data, 'localhost'), { recursive: true });
    expect(await snapshot(dir)).toEqual(before);
    expect(targets).toBeGreaterThanOrEqual(8);

    for (let k = 0; k < targets; k++) {
      const b = backend({ faults: { beforeRename: (i) => { if (i === k) throw new Error(`injected at rename ${k}`); } } });
      await expect(b.applyUser(ref, ACCOUNT_ALICE, stream(EDIT), options())).rejects.toThrow(`injected at rename ${k}`);
      expect(await snapshot(dir), `fault at rename ${k}`).toEqual(before);
    }
    let staged = 0;
    const b = backend({ faults: { beforeStage: () => { if (++staged === 4) throw new Error('injected while staging'); } } });
    await expect(b.applyUser(ref, ACCOUNT_ALICE, stream(EDIT), options())).rejects.toThrow('injected while staging');
    expect(await snapshot(dir)).toEqual(before);
  });

  it('an error in the document rolls back everything staged so far', async () => {
    const before = await snapshot(dir);
    const broken = async function* (): AsyncGenerator<UserRecord> {
      yield* EDIT;
      throw new Error('malformed document tail');
    };
    await expect(backend().applyUser(ref, ACCOUNT_ALICE, broken(), options())).rejects.toThrow('malformed document tail');
    expect(await snapshot(dir)).toEqual(before);
    const controller = new AbortController();
    const aborting = async function* (): AsyncGenerator<UserRecord> {
      yield EDIT[0] as UserRecord;
      controller.abort(new Error('client went away'));
      yield EDIT[1] as UserRecord;
    };
    await expect(backend().applyUser(ref, ACCOUNT_ALICE, aborting(), options({ signal: controller.signal }))).rejects.toThrow('client went away');
    expect(await snapshot(dir)).toEqual(before);
  });

  it('a crash in the middle of the renames is rolled back from the journal', async () => {
    const before = await snapshot(dir);
    const image = path.join(dir, 'crash-image');
    const b = backend({
      faults: {
        beforeRename: async (i) => {
          if (i !== 3) return;
          // What the disk holds if the process dies right here: three files new, the rest old.
          await cp(data, image, { recursive: true });
          throw new Error('simulated crash');
        },
      },
    });
    await expect(b.applyUser(ref, ACCOUNT_ALICE, stream(EDIT), options())).rejects.toThrow('simulated crash');
    const crashed = await snapshot(image);
    expect([...crashed.keys()].some((f) => f.startsWith('.xporta-journal-'))).toBe(true);
    expect([...crashed.keys()].some((f) => f.endsWith('.bak'))).toBe(true);
    expect(crashed).not.toEqual(await snapshot(data));

    // The journal names absolute paths under `data`: put the image there, as after a reboot.
    await rm(data, { recursive: true });
    await cp(image, data, { recursive: true });
    await rm(image, { recursive: true });
    expect(await recoverJournals(data)).toBe(1);
    expect(await snapshot(dir)).toEqual(before);
  });

  it('a file Prosody changes meanwhile makes the import fail with conflict', async () => {
    const rosterPath = path.join(data, 'localhost/roster/alice.dat');
    await writeFile(rosterPath, 'return {\n\t["bob@localhost"] = {\n\t\t["subscription"] = "both";\n\t\t["groups"] = {};\n\t};\n};\n');
    let done = false;
    const b = backend({
      faults: {
        beforeStage: async () => {
          if (done) return;
          done = true;
          await writeFile(rosterPath, 'return {\n\t["bob@localhost"] = {\n\t\t["subscription"] = "none";\n\t\t["groups"] = {};\n\t};\n};\n');
        },
      },
    });
    const before = await snapshot(dir);
    await expect(b.applyUser(ref, ACCOUNT_ALICE, stream(EDIT), options())).rejects.toMatchObject({ code: 'conflict' });
    const after = await snapshot(dir);
    expect([...after.keys()]).toEqual([...before.keys()]);
    expect(await readFile(rosterPath, 'utf8')).toContain('"none"');

    // A file that did not exist when the import looked, and does now, is a conflict too.
    const appeared = path.join(data, 'localhost/blocklist/newbie.dat');
    const racing = backend({
      faults: {
        beforeStage: async (p) => {
          if (p.endsWith('/accounts/newbie.dat')) await writeFile(appeared, 'return {\n\t["x@example.net"] = 1;\n};\n');
        },
      },
    });
    await expect(racing.applyUser({ host: 'localhost', user: 'newbie' }, ACCOUNT, stream([FULL[10] as UserRecord]), options())).rejects.toMatchObject({
      code: 'conflict',
      message: expect.stringMatching(/^localhost\/blocklist\/newbie\.dat changed/),
    });
    expect(await readFile(appeared, 'utf8')).toContain('x@example.net');
    expect(await backend().userExists({ host: 'localhost', user: 'newbie' })).toBe(false);
  });
});

describe.skipIf(!luaAvailable())('files Lua loads as util/datamanager.lua does', () => {
  it('every written .dat and .list loads in an empty environment', async () => {
    await backend().applyUser({ host: 'localhost', user: 'dave' }, ACCOUNT, stream(FULL), options({ mode: 'replace' }));
    const files = [...(await snapshot(data)).keys()].filter((f) => f.includes('/dave.'));
    expect(files.length).toBeGreaterThanOrEqual(10);
    const script = `
      assert(#arg == ${files.length}, "arguments")
      for _, file in ipairs(arg) do
        local items = 0
        local env = file:match("%.list$") and { item = function () items = items + 1 end } or {}
        local f = assert(loadfile(file, "t", env))
        local v = f()
        assert(file:match("%.list$") and items > 0 or type(v) == "table", file)
      end
      print("ok")`;
    const result = spawnSync(LUA, ['-', ...files.map((f) => path.join(data, f))], { input: script, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('ok');
  });
});

describe('parity with the SQL backend', () => {
  it('stores the shared sample user and reads it back in the same canonical form', async () => {
    const { ALICE_ACCOUNT, ALICE_RECORDS, HOSTS } = await import('../../support/storage/sample-user.js');
    const empty = path.join(dir, 'empty');
    const b = new ProsodyFilesBackend({ path: empty, hosts: HOSTS });
    backends.push(b);
    const ref = { host: 'localhost', user: 'alice' };
    const report = await b.applyUser(ref, ALICE_ACCOUNT, stream(ALICE_RECORDS), options({ mode: 'replace' }));
    expect(report).toMatchObject({ created: true, warnings: [], skipped: [] });
    expect(await b.readAccount(ref)).toEqual(ALICE_ACCOUNT);
    expect(await collect(b.readUser(ref, { include: ALL }))).toEqual(ALICE_RECORDS);
    // A second identical merge changes nothing but the roster version and the blocklist's modified time.
    const again = await b.applyUser(ref, ALICE_ACCOUNT, stream(ALICE_RECORDS), options({ mode: 'merge' }));
    expect(again.counts.archive ?? 0).toBe(0);
    expect(again.counts.offline ?? 0).toBe(0);
    const back = await collect(b.readUser(ref, { include: ALL }));
    expect(back.filter((r) => r.kind !== 'roster')).toEqual(ALICE_RECORDS.filter((r) => r.kind !== 'roster'));
  });
});
