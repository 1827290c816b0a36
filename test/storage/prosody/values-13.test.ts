/** Prosody 13's value shapes that need no server: PEP roster access, sub-second archive times. */
import { describe, expect, it } from 'vitest';
import type { SkippedItem } from '../../../src/storage/backend.js';
import { archiveItemFromRecord, offlineItemFromRecord } from '../../../src/storage/prosody/archive.js';
import { LuaTable } from '../../../src/storage/prosody/lua.js';
import { pepNodeFromStore, pepNodeToStore } from '../../../src/storage/prosody/pep.js';
import { isoToTime, secondsToIso } from '../../../src/storage/prosody/util.js';
import { archiveItemToList, stampOf } from '../../../src/storage/prosody-files/list-items.js';
import { NS, element, type PepNodeRecord } from '../../../src/records/model.js';

const rosterNode = (groups: string[]): PepNodeRecord => ({
  kind: 'pep-node',
  node: 'urn:example:private',
  config: [
    { var: 'pubsub#access_model', type: 'list-single', values: ['roster'] },
    { var: 'pubsub#roster_groups_allowed', type: 'list-multi', values: groups },
  ],
  affiliations: [],
  subscriptions: [],
});

describe('PEP access model roster', () => {
  it('is kept on 13, with roster_groups_allowed a list even for one group, and reads back the same', () => {
    const skipped: SkippedItem[] = [];
    const stored = pepNodeToStore(rosterNode(['Friends']), skipped, '13');
    expect(skipped).toEqual([]);
    const config = stored.get('config') as LuaTable;
    expect(config.get('access_model')).toBe('roster');
    const groups = config.get('roster_groups_allowed');
    expect(groups).toBeInstanceOf(LuaTable);
    expect((groups as LuaTable).array).toEqual(['Friends']);
    const back = pepNodeFromStore('urn:example:private', stored);
    expect(back.config).toContainEqual({ var: 'pubsub#access_model', type: 'list-single', values: ['roster'] });
    expect(back.config).toContainEqual({ var: 'pubsub#roster_groups_allowed', type: 'list-multi', values: ['Friends'] });
  });

  it('becomes whitelist on 0.12, which has no roster model, and says so', () => {
    const skipped: SkippedItem[] = [];
    const stored = pepNodeToStore(rosterNode(['A', 'B']), skipped, '0.12');
    expect((stored.get('config') as LuaTable).get('access_model')).toBe('whitelist');
    expect(skipped).toEqual([{ kind: 'pep', reason: 'access model roster is not supported by Prosody 0.12 PEP; whitelist used', detail: 'urn:example:private' }]);
  });
});

describe('sub-second archive times', () => {
  const stanza = element('message', NS.client, { from: 'bob@localhost/pc', to: 'alice@localhost', type: 'chat', id: 'x' }, [element('body', NS.client, {}, ['hi'])]);

  it('XEP-0082 with 6 fraction digits, the µs rounded down as util.datetime does; whole seconds as before', () => {
    expect(secondsToIso(1796625223.2167)).toBe('2026-12-07T06:33:43.216700Z');
    expect(secondsToIso(1796625223.25)).toBe('2026-12-07T06:33:43.250000Z');
    expect(secondsToIso(1796625223)).toBe('2026-12-07T06:33:43Z');
    expect(isoToTime('2026-12-07T06:33:43Z')).toBe(1796625223);
    expect(isoToTime('2026-12-07T06:33:43.000Z')).toBe(1796625223);
    expect(Math.abs((isoToTime('2026-12-07T06:33:43.5+01:00') ?? 0) - (1796625223.5 - 3600))).toBeLessThan(1e-6);
  });

  it('every µs of a second survives stamp → time → stamp', () => {
    for (let micros = 0; micros < 1e6; micros += 997) {
      const stamp = `2026-12-07T06:33:43.${String(micros).padStart(6, '0')}Z`;
      const back = secondsToIso(isoToTime(stamp) ?? 0);
      expect(back).toBe(micros === 0 ? '2026-12-07T06:33:43Z' : stamp);
    }
  });

  it('an archive record keeps its fraction only where asked (Prosody 13 on SQLite and files)', () => {
    const record = { kind: 'archive' as const, id: 'a', timestamp: '2026-12-07T06:33:43.2167Z', with: 'bob@localhost', stanza };
    const kept = archiveItemFromRecord(record, 'alice@localhost', true);
    expect(typeof kept === 'string' ? kept : secondsToIso(kept.when)).toBe('2026-12-07T06:33:43.216700Z');
    expect(archiveItemFromRecord(record, 'alice@localhost')).toMatchObject({ when: 1796625223 });
    const offline = offlineItemFromRecord({ kind: 'offline', timestamp: record.timestamp, stanza }, 'alice@localhost', true);
    expect(typeof offline === 'string' ? offline : secondsToIso(offline.when)).toBe('2026-12-07T06:33:43.216700Z');
  });

  it('a .list item keeps the float and a µs stamp as Prosody 13 writes them', () => {
    const item = archiveItemToList({ key: 'a', when: 1796625223.2167, with: 'bob@localhost', value: stanza }, { keepEmptyWith: true });
    expect(item.get('when')).toBe(1796625223.2167);
    expect(stampOf(1796625223)).toBe('2026-12-07T06:33:43Z');
    // util.datetime floors the µs of the float, as here.
    expect((item.get('attr') as LuaTable).get('stamp')).toBe(stampOf(1796625223.2167));
    expect(stampOf(1796625223.2167)).toMatch(/^2026-12-07T06:33:43\.21(6699|6700)Z$/);
  });
});

describe('telling Prosody 13 files from 0.12', () => {
  it('by a 13-only store directory or a .lidx in the archive; nothing tells nothing', async () => {
    const { mkdtemp, mkdir, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { detectProsodyVersion } = await import('../../../src/storage/prosody-files/generation.js');
    const dir = await mkdtemp(join(tmpdir(), 'xporta-gen-'));
    try {
      expect(await detectProsodyVersion(dir, 'localhost')).toBeUndefined();
      await mkdir(join(dir, 'localhost', 'archive'), { recursive: true });
      await writeFile(join(dir, 'localhost', 'archive', 'alice.list'), '');
      expect(await detectProsodyVersion(dir, 'localhost')).toBeUndefined();
      await writeFile(join(dir, 'localhost', 'archive', 'alice.lidx'), '');
      expect(await detectProsodyVersion(dir, 'localhost')).toBe('13');
      const { storeDir } = await import('../../../src/storage/prosody-files/paths.js');
      await mkdir(storeDir(dir, 'example.org', 'account_roles'), { recursive: true });
      expect(await detectProsodyVersion(dir, 'example.org')).toBe('13');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
