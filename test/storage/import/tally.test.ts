/**
 * The bookkeeping every backend's import shares: the tally and its report, the blocklist and
 * privacy collection, and the run of one import over a record stream.
 */
import { describe, expect, it } from 'vitest';
import type { ApplyOptions, UserRef } from '../../../src/storage/backend.js';
import { StorageError } from '../../../src/storage/backend.js';
import { CollectedBlocklist, CollectedPrivacy } from '../../../src/storage/import/collected.js';
import { ImportTally } from '../../../src/storage/import/tally.js';
import { UserImport, type StoredRecord } from '../../../src/storage/import/user-import.js';
import type { DataKind, UserRecord, UserStart } from '../../../src/records/model.js';

describe('ImportTally', () => {
  it('reports counts, then skips in order, then duplicates and kinds not included, one line per kind', () => {
    const tally = new ImportTally();
    tally.count('roster');
    tally.count('archive', 3);
    tally.count('roster');
    tally.count('archive', -1);
    tally.skip('pep', 'no node', 'urn:a');
    tally.skip('archive', 'no usable archive time');
    tally.noteDuplicates('offline', 2);
    tally.noteDuplicates('archive', 0);
    tally.noteDuplicates('archive', 1);
    tally.noteDuplicates('offline', 1);
    tally.noteNotIncluded('vcard');
    tally.noteNotIncluded('vcard');
    tally.noteUnsupported('other');
    tally.noteUnsupported('other');
    tally.warnings.push('restart');
    const report = tally.report('alice@localhost', { mode: 'merge', dryRun: true }, false);
    expect(report).toEqual({
      user: 'alice@localhost',
      mode: 'merge',
      dryRun: true,
      created: false,
      counts: { roster: 2, archive: 2 },
      skipped: [
        { kind: 'pep', reason: 'no node', detail: 'urn:a' },
        { kind: 'archive', reason: 'no usable archive time' },
        { kind: 'offline', reason: 'already stored', detail: '3 record(s)' },
        { kind: 'archive', reason: 'already stored', detail: '1 record(s)' },
        { kind: 'vcard', reason: 'kind not included', detail: '2 record(s)' },
      ],
      unsupported: ['other'],
      warnings: ['restart'],
    });
    expect(Object.keys(report.counts)).toEqual(['roster', 'archive']);
    expect('detail' in (report.skipped[1] ?? {})).toBe(false);
  });

  it('an empty tally reports nothing', () => {
    expect(new ImportTally().report('a@b', { mode: 'replace', dryRun: false }, true)).toEqual({
      user: 'a@b',
      mode: 'replace',
      dryRun: false,
      created: true,
      counts: {},
      skipped: [],
      unsupported: [],
      warnings: [],
    });
  });
});

describe('collected blocklist and privacy', () => {
  it('unites blocked JIDs in the order first met', () => {
    const blocklist = new CollectedBlocklist();
    blocklist.add({ kind: 'blocklist', items: ['a@x', 'b@x'] });
    blocklist.add({ kind: 'blocklist', items: ['b@x', 'c@x'] });
    expect([...blocklist.jids]).toEqual(['a@x', 'b@x', 'c@x']);
  });

  it('keeps privacy lists by name (the later wins, in its first place) and the last default named', () => {
    const privacy = new CollectedPrivacy();
    expect(privacy.toRecord()).toEqual({ kind: 'privacy', lists: [] });
    const deny = { action: 'deny' as const, order: 1, stanzas: [] };
    privacy.add({ kind: 'privacy', defaultList: 'one', lists: [{ name: 'one', items: [] }, { name: 'two', items: [] }] });
    privacy.add({ kind: 'privacy', lists: [{ name: 'one', items: [deny] }] });
    privacy.add({ kind: 'privacy', defaultList: 'two', lists: [] });
    expect(privacy.toRecord()).toEqual({
      kind: 'privacy',
      defaultList: 'two',
      lists: [
        { name: 'one', items: [deny] },
        { name: 'two', items: [] },
      ],
    });
  });
});

/** Records what the run asks of a backend, in order. */
class RecordingImport extends UserImport {
  readonly calls: string[] = [];
  written: { blocked?: string[]; privacy?: string[] } = {};

  constructor(
    options: ApplyOptions,
    private readonly exists: boolean,
    ref: UserRef = { host: 'localhost', user: 'alice' },
  ) {
    super(ref, options);
  }
  protected async accountExists(): Promise<boolean> {
    this.calls.push('exists?');
    return this.exists;
  }
  protected async begin(_account: UserStart, exists: boolean): Promise<void> {
    this.calls.push(`begin ${exists}`);
  }
  protected async add(record: StoredRecord): Promise<void> {
    this.calls.push(`add ${record.kind}`);
    this.tally.count('roster');
  }
  protected async finish(): Promise<void> {
    this.calls.push('finish');
    if (this.blocked) this.written.blocked = [...this.blocked];
    if (this.privacy) this.written.privacy = [...this.privacy.lists.keys()];
  }
}

const account: UserStart = { kind: 'user', name: 'alice', scram: [], extraAttributes: {} };

function options(include: DataKind[], extra: Partial<ApplyOptions> = {}): ApplyOptions {
  return { mode: 'merge', dryRun: false, include: new Set(include), createAccount: true, ...extra };
}

async function* recordsOf(...records: UserRecord[]): AsyncIterable<UserRecord> {
  yield* records;
}

describe('UserImport.run', () => {
  it('hands the backend each selected record in order, gathers blocklist and privacy, counts the rest as not included', async () => {
    const run = new RecordingImport(options(['roster', 'blocklist', 'privacy']), false);
    const report = await run.run(
      account,
      recordsOf(
        { kind: 'blocklist', items: ['a@x'] },
        { kind: 'roster', items: [] },
        { kind: 'vcard', vcard: { name: 'vCard', xmlns: 'vcard-temp', attrs: {}, children: [] } },
        { kind: 'privacy', lists: [{ name: 'p', items: [] }] },
        { kind: 'pending-subscription', from: 'b@x', payload: [] },
        { kind: 'blocklist', items: ['b@x', 'a@x'] },
        { kind: 'vcard', vcard: { name: 'vCard', xmlns: 'vcard-temp', attrs: {}, children: [] } },
      ),
    );
    expect(run.calls).toEqual(['exists?', 'begin false', 'add roster', 'add pending-subscription', 'finish']);
    expect(run.written).toEqual({ blocked: ['a@x', 'b@x'], privacy: ['p'] });
    expect(report).toMatchObject({
      user: 'alice@localhost',
      created: true,
      counts: { blocklist: 2, roster: 2, privacy: 1 },
      skipped: [{ kind: 'vcard', reason: 'kind not included', detail: '2 record(s)' }],
    });
  });

  it('refuses a missing account unless asked to create it, before anything is written', async () => {
    const run = new RecordingImport(options(['roster'], { createAccount: false }), false);
    const failure = run.run(account, recordsOf({ kind: 'roster', items: [] }));
    await expect(failure).rejects.toBeInstanceOf(StorageError);
    await expect(failure).rejects.toMatchObject({ code: 'user-not-found' });
    expect(run.calls).toEqual(['exists?']);
  });

  it('an existing account is not created, and nothing is collected that the document lacks', async () => {
    const run = new RecordingImport(options(['roster'], { createAccount: false }), true);
    const report = await run.run(account, recordsOf());
    expect(run.calls).toEqual(['exists?', 'begin true', 'finish']);
    expect(run.written).toEqual({});
    expect(report.created).toBe(false);
  });

  it('stops at an abort between records, without finishing', async () => {
    const controller = new AbortController();
    const run = new RecordingImport(options(['roster'], { signal: controller.signal }), true);
    async function* records(): AsyncIterable<UserRecord> {
      yield { kind: 'roster', items: [] };
      controller.abort(new Error('client went away'));
      yield { kind: 'roster', items: [] };
    }
    await expect(run.run(account, records())).rejects.toThrow('client went away');
    expect(run.calls).toEqual(['exists?', 'begin true', 'add roster']);
  });
});
