/** The value encodings of ejabberd's SQL tables, and the `ejabberd-sql` storage config. No server needed. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/config.js';
import { formatTerm, parseTerm, type ErlangTerm } from '../../../src/storage/ejabberd-sql/erlang.js';
import {
  decodeSubscriptions,
  encodeSubscriptions,
  erlangNowToIso,
  fieldToOption,
  isoToMicros,
  microsToErlangNow,
  microsToIso,
  optionToField,
} from '../../../src/storage/ejabberd-sql/pep.js';

describe('Erlang terms of pubsub_node_option.val', () => {
  it.each<[string, ErlangTerm]>([
    ['whitelist', { type: 'atom', value: 'whitelist' }],
    ['250000', { type: 'integer', value: 250000 }],
    ['[]', { type: 'list', items: [] }],
    ['<<"Bookmarks">>', { type: 'binary', value: 'Bookmarks' }],
    ['[<<"Friends">>,<<"Work">>]', { type: 'list', items: [{ type: 'binary', value: 'Friends' }, { type: 'binary', value: 'Work' }] }],
    ['<<"Ça \\"va\\""/utf8>>', { type: 'binary', value: 'Ça "va"' }],
  ])('%s', (text, term) => {
    expect(parseTerm(text)).toEqual(term);
    expect(parseTerm(formatTerm(term))).toEqual(term);
  });

  it('writes binaries as ejabberd 23.01 does, which reads the column one byte per character', () => {
    // Both forms as the real ejabberd wrote them for a node configured by a client.
    const title = 'Notes of Zoë O’Brien-Müller';
    const ejabberdTitle = '<<78,111,116,101,115,32,111,102,32,90,111,195,171,32,79,226,128,153,66,114,105,101,110,45,77,195,188,108,108,101,114>>';
    expect(formatTerm({ type: 'binary', value: title })).toBe(ejabberdTitle);
    expect(parseTerm(ejabberdTitle)).toEqual({ type: 'binary', value: title });
    expect(formatTerm({ type: 'binary', value: 'desc ü' })).toBe('<<"desc ü">>');
    expect(parseTerm('<<"desc ü">>')).toEqual({ type: 'binary', value: 'desc ü' });
    expect(formatTerm({ type: 'binary', value: '' })).toBe('<<>>');
    expect(parseTerm('<<"ab",99>>')).toEqual({ type: 'binary', value: 'abc' });
    expect(formatTerm({ type: 'binary', value: 'a\tb' })).toBe('<<"a\\tb">>');
    expect(() => parseTerm('<<256>>')).toThrow(/unsupported/);
  });

  it('refuses tuples', () => {
    expect(() => parseTerm('{a,b}')).toThrow(/unsupported/);
  });
});

describe('node options ↔ config fields', () => {
  it('maps stored options to fields and back', () => {
    expect(optionToField('persist_items', 'true')).toEqual({ var: 'pubsub#persist_items', type: 'boolean', values: ['1'] });
    expect(optionToField('access_model', 'whitelist')).toEqual({ var: 'pubsub#access_model', values: ['whitelist'] });
    expect(optionToField('sql', 'true')).toBeUndefined();
    expect(fieldToOption({ var: 'pubsub#persist_items', values: ['1'] })).toEqual({ name: 'persist_items', value: 'true' });
    expect(fieldToOption({ var: 'pubsub#max_items', values: ['max'] })).toEqual({ name: 'max_items', value: 'max' });
    expect(fieldToOption({ var: 'pubsub#max_items', values: ['256'] })).toEqual({ name: 'max_items', value: '256' });
    expect(fieldToOption({ var: 'pubsub#title', values: ['Mes signets'] })).toEqual({ name: 'title', value: '<<"Mes signets">>' });
    expect(fieldToOption({ var: 'pubsub#access_model', values: ['bogus'] })).toMatch(/not supported/);
    expect(fieldToOption({ var: 'pubsub#unknown', values: ['x'] })).toMatch(/not supported/);
  });

  it('subscriptions', () => {
    expect(decodeSubscriptions('s:abc,p:def')).toEqual([
      { subscription: 'subscribed', subid: 'abc' },
      { subscription: 'pending', subid: 'def' },
    ]);
    expect(encodeSubscriptions([{ subscription: 'subscribed', subid: 'abc' }])).toBe('s:abc');
    expect(decodeSubscriptions('')).toEqual([]);
  });
});

describe('times', () => {
  it('erlang:now() text ↔ ISO 8601', () => {
    expect(erlangNowToIso('001795:460022:730442')).toBe('2026-11-23T18:53:42.730442Z');
    expect(microsToErlangNow(1795460022730442)).toBe('001795:460022:730442');
    expect(microsToIso(1795460022000000)).toBe('2026-11-23T18:53:42.000Z');
    expect(isoToMicros('2026-11-23T18:53:42.730442Z')).toBe(1795460022730442);
    expect(isoToMicros('2026-11-23T18:53:42Z')).toBe(1795460022000000);
  });
});

function configWith(storage: unknown): ReturnType<typeof loadConfig> {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-ejcfg-'));
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify({ storage }));
  try {
    return loadConfig({ configPath: path, env: {}, cwd: dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('storage.type ejabberd-sql in the config', () => {
  it('accepts sqlite and postgres with a schema', () => {
    expect(configWith({ type: 'ejabberd-sql', driver: 'sqlite', schema: 'new', database: '/var/lib/ejabberd/ejabberd.db' }).storage).toEqual({
      type: 'ejabberd-sql',
      driver: 'sqlite',
      schema: 'new',
      database: '/var/lib/ejabberd/ejabberd.db',
    });
    expect(configWith({ type: 'ejabberd-sql', driver: 'postgres', database: 'ejabberd' }).storage).toMatchObject({
      type: 'ejabberd-sql',
      driver: 'postgres',
      schema: 'default',
      host: '127.0.0.1',
      port: 5432,
      username: 'ejabberd',
    });
  });

  it('refuses an unknown schema, a missing SQLite path, unknown fields', () => {
    expect(() => configWith({ type: 'ejabberd-sql', driver: 'sqlite', schema: 'old', database: '/x.db' })).toThrow(/storage\.schema/);
    expect(() => configWith({ type: 'ejabberd-sql', driver: 'sqlite' })).toThrow(/storage\.database/);
    expect(() => configWith({ type: 'ejabberd-sql', driver: 'sqlite', database: '/x.db', path: '/y' })).toThrow(/storage\.path/);
  });
});
