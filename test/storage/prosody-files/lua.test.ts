/**
 * The Lua subset of Prosody's internal storage: parser and serializer. Their cross-check with
 * Prosody's own util/serialization.lua run by a real Lua 5.4 is lua-crosscheck.live.test.ts.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LuaFloat, LuaTable, type LuaValue } from '../../../src/storage/prosody/lua.js';
import {
  LuaParseError,
  parseDatFile,
  parseListItems,
  parseLuaValue,
  readListFile,
} from '../../../src/storage/prosody-files/lua-parse.js';
import {
  LuaSerializeError,
  formatG,
  serializeDatFile,
  serializeListItem,
  serializeLua,
  serializeLuaNumber,
  serializeLuaString,
} from '../../../src/storage/prosody-files/lua-serialize.js';
import { canon, table } from '../../support/storage/lua.js';
import { FIXTURES_DIR } from '../../support/paths.js';

const FIXTURES = path.join(FIXTURES_DIR, 'prosody-files/data/localhost');


describe('Lua serializer (util/serialization.lua default preset)', () => {
  it('writes tables with tabs, the array part first and every key bracketed', () => {
    const t = table({ name: 'x', attr: table({ xmlns: 'urn:a' }), empty: table() }, ['child', 2], [[false, table({ version: 5 })]]);
    expect(serializeLua(t)).toBe(
      '{\n\t"child";\n\t2;\n\t["name"] = "x";\n\t["attr"] = {\n\t\t["xmlns"] = "urn:a";\n\t};\n\t["empty"] = {};\n\t[false] = {\n\t\t["version"] = 5;\n\t};\n}',
    );
    expect(serializeLua(table())).toBe('{}');
    expect(serializeDatFile(table({ a: 1 }))).toBe('return {\n\t["a"] = 1;\n};\n');
    expect(serializeListItem(table({ a: true }))).toBe('item({\n\t["a"] = true;\n});\n');
  });

  it('escapes like Prosody: named C escapes, quotes, three-digit decimals for controls and bytes ≥ 127', () => {
    expect(serializeLuaString('Zoë O’Brien')).toBe('"Zo\\195\\171 O\\226\\128\\153Brien"');
    expect(serializeLuaString('\u0000\u0001\u007f\'"\\\n\r\t\u0007\b\f\u000b')).toBe('"\\000\\001\\127\\\'\\"\\\\\\n\\r\\t\\a\\b\\f\\v"');
    expect(serializeLuaString('🎻')).toBe('"\\240\\159\\142\\187"');
    expect(() => serializeLuaString('\ud800')).toThrow(LuaSerializeError);
  });

  it('writes integers with %d and floats with %.18g, infinities and NaN as divisions', () => {
    expect(serializeLuaNumber(10000)).toBe('10000');
    expect(serializeLuaNumber(-42)).toBe('-42');
    expect(serializeLuaNumber(1.5)).toBe('1.5');
    expect(serializeLuaNumber(0.1)).toBe('0.100000000000000006');
    expect(serializeLuaNumber(new LuaFloat(2))).toBe('2');
    expect(serializeLuaNumber(new LuaFloat(-0))).toBe('-0');
    expect(serializeLuaNumber(1e300)).toBe('1.00000000000000005e+300');
    expect(serializeLuaNumber(Infinity)).toBe('(1/0)');
    expect(serializeLuaNumber(-Infinity)).toBe('(-1/0)');
    expect(serializeLuaNumber(NaN)).toBe('(0/0)');
    expect(serializeLuaNumber(2 ** 63)).toBe('9.22337203685477581e+18');
    // An exact tie at the 18th digit rounds to even, as glibc does (JS toPrecision would round up).
    expect(formatG(1 + 2 ** -18, 18)).toBe('1.00000381469726562');
    expect(formatG(1e-5, 18)).toBe('1.00000000000000008e-05');
    expect(formatG(123456.5, 18)).toBe('123456.5');
  });

  it('refuses more than 127 nested tables, as Prosody does', () => {
    const nest = (n: number): LuaTable => {
      let t = table();
      for (let i = 1; i < n; i++) t = table({}, [t]);
      return t;
    };
    expect(() => serializeLua(nest(127))).not.toThrow();
    expect(() => serializeLua(nest(128))).toThrow(/max table depth/);
  });
});

describe('Lua parser', () => {
  it('reads every escape Lua 5.4 has', () => {
    expect(parseLuaValue('"\\a\\b\\f\\n\\r\\t\\v\\\\\\"\\\'"')).toBe('\u0007\b\f\n\r\t\u000b\\"\'');
    expect(parseLuaValue('"Zo\\195\\171 \\226\\128\\153"')).toBe('Zoë ’');
    expect(parseLuaValue('"\\0\\00\\000\\0651"')).toBe('\u0000\u0000\u0000A1');
    expect(parseLuaValue('"\\x41\\xc3\\xab"')).toBe('Aë');
    expect(parseLuaValue('"\\u{48}\\u{EB}\\u{1F3BB}"')).toBe('Hë🎻');
    expect(parseLuaValue('"a\\z   \n\t  b"')).toBe('ab');
    expect(parseLuaValue('"line\\\nnext"')).toBe('line\nnext');
    expect(parseLuaValue("'single \"quoted\"'")).toBe('single "quoted"');
    // Raw bytes ≥ 128 in the file are string bytes too.
    expect(parseLuaValue(Buffer.from('"Zoë"', 'utf8'))).toBe('Zoë');
  });

  it('refuses strings that are not UTF-8 instead of altering them', () => {
    expect(() => parseLuaValue('"\\255"')).toThrow(/not valid UTF-8/);
    expect(() => parseLuaValue('"\\237\\160\\128"')).toThrow(/not valid UTF-8/); // a surrogate
    expect(() => parseLuaValue('"\\u{D800}"')).toThrow(/not valid UTF-8/);
    expect(() => parseLuaValue('"\\256"')).toThrow(/decimal escape too large/);
    expect(() => parseLuaValue('"\\q"')).toThrow(/invalid escape/);
    expect(() => parseLuaValue('"open\nstring"')).toThrow(/unfinished string/);
  });

  it('reads numbers as Lua 5.4 does (integer vs float subtype)', () => {
    expect(parseLuaValue('10000')).toBe(10000);
    expect(parseLuaValue('-42')).toBe(-42);
    expect(parseLuaValue('-0')).toBe(0);
    expect(parseLuaValue('1.5')).toEqual(new LuaFloat(1.5));
    expect(parseLuaValue('2.0')).toEqual(new LuaFloat(2));
    expect(parseLuaValue('1e+300')).toEqual(new LuaFloat(1e300));
    expect(parseLuaValue('1.00000000000000005e+300')).toEqual(new LuaFloat(1e300));
    expect(parseLuaValue('-0.0')).toEqual(new LuaFloat(-0));
    expect(parseLuaValue('0x10')).toBe(16);
    expect(parseLuaValue('0x1p4')).toEqual(new LuaFloat(16));
    expect(parseLuaValue('(1/0)')).toEqual(new LuaFloat(Infinity));
    expect(parseLuaValue('(-1/0)')).toEqual(new LuaFloat(-Infinity));
    expect((parseLuaValue('(0/0)') as LuaFloat).value).toBeNaN();
    // Beyond 64 bits a decimal numeral is a float in Lua; beyond 2^53 JS cannot hold the integer.
    expect(parseLuaValue('18446744073709551616')).toEqual(new LuaFloat(2 ** 64));
    expect(() => parseLuaValue('9007199254740993')).toThrow(/2\^53/);
    expect(parseLuaValue('-9007199254740992')).toBe(-(2 ** 53));
    expect(() => parseLuaValue('1x')).toThrow(/malformed number/);
  });

  it('reads tables: bracketed, named and positional fields, [false], nil values, both separators', () => {
    const t = parseLuaValue('{ "a", [false] = { version = 5 }, ["k"] = "v"; [10] = true, x = nil, "b"; [3] = 1, nested = {}, }') as LuaTable;
    expect(t.array).toEqual(['a', 'b', 1]);
    expect(t.get('k')).toBe('v');
    expect(t.get('x')).toBeUndefined();
    expect((t.get(false) as LuaTable).get('version')).toBe(5);
    expect(t.get(10)).toBe(true);
    expect(t.get('nested')).toBeInstanceOf(LuaTable);
    // Positional fields win over explicit [n] keys, as Lua's SETLIST comes after them.
    expect((parseLuaValue('{ [1] = "explicit", "positional" }') as LuaTable).array).toEqual(['positional']);
    expect((parseLuaValue('{ "a", nil, "c" }') as LuaTable).get(3)).toBe('c');
    expect(() => parseLuaValue('{ [nil] = 1 }')).toThrow(/index is nil/);
    expect(() => parseLuaValue('{ [(0/0)] = 1 }')).toThrow(/NaN/);
  });

  it('refuses anything that is not data, since Prosody loads these files with an empty environment', () => {
    for (const text of ['math.huge', 'os.exit()', '{ f = function() end }', '{ 1 + 1 }', 'x', '{ a = b }', '"a" .. "b"', '[[long]]', '{} {}']) {
      expect(() => parseLuaValue(text), text).toThrow(LuaParseError);
    }
    expect(() => parseDatFile('return os.execute("rm -rf /");')).toThrow(LuaParseError);
    expect(() => parseListItems('item({}); print("x");')).toThrow(/expected "item\("/);
    expect(() => parseDatFile('return {};\nreturn {};')).toThrow(/after the returned value/);
  });

  it('enforces the depth and size limits', () => {
    const nested = (n: number): string => '{'.repeat(n) + '}'.repeat(n);
    expect(() => parseLuaValue(nested(127))).not.toThrow();
    expect(() => parseLuaValue(nested(128))).toThrow(/nested deeper than 127/);
    expect(() => parseLuaValue(nested(5), { maxDepth: 4 })).toThrow(/deeper than 4/);
    expect(() => parseLuaValue(`"${'x'.repeat(100)}"`, { maxBytes: 50 })).toThrow(/more than 50 bytes/);
  });

  it('reports the line of a problem', () => {
    const err = (() => {
      try {
        parseDatFile('return {\n\t["a"] = 1;\n\t["b"] = @;\n};\n');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(LuaParseError);
    expect((err as LuaParseError).line).toBe(3);
  });

  it('reads .dat and .list texts', () => {
    expect(parseDatFile('return {\n\t["a"] = 1;\n};\n')).toEqual(table({ a: 1 }));
    expect(parseDatFile('')).toBeUndefined();
    expect(parseDatFile('return nil;')).toBeUndefined();
    expect(parseListItems('item({\n\t["a"] = 1;\n});\nitem({});item(nil);\n  \n')).toEqual([table({ a: 1 }), table()]);
    // atomic_append blanks a failed write with spaces: that is whitespace between items.
    expect(parseListItems('item({});\n          \nitem({});\n')).toHaveLength(2);
  });
});

describe('.list files, streamed', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'xporta-lua-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('yields multi-line items one by one, strings spanning lines included', async () => {
    const file = path.join(dir, 'a.list');
    const items = [table({ text: 'two\nlines', n: 1 }, ['x']), table({ tricky: '} ) ] -- not a comment {' }), table({ z: 'a' })];
    await writeFile(file, items.map(serializeListItem).join('') + 'item("con\\\ntinued");\nitem("skip\\z\n   ped"); item({});\n');
    const got: LuaValue[] = [];
    for await (const v of readListFile(file)) got.push(v);
    expect(got.map(canon)).toEqual([...items, 'con\ntinued', 'skipped', table()].map(canon));
  });

  it('fails on a truncated last item (a crash during an append) with its line', async () => {
    const file = path.join(dir, 'b.list');
    await writeFile(file, `${serializeListItem(table({ a: 1 }))}item({\n\t["b"] = `);
    const got: LuaValue[] = [];
    const err = await (async () => {
      try {
        for await (const v of readListFile(file)) got.push(v);
      } catch (e) {
        return e;
      }
    })();
    expect(got).toHaveLength(1);
    expect(err).toBeInstanceOf(LuaParseError);
    expect((err as LuaParseError).line).toBe(5);
  });

  it('bounds the size of one item', async () => {
    const file = path.join(dir, 'c.list');
    await writeFile(file, `item({\n${'\t"xxxxxxxxxx";\n'.repeat(100)}});\n`);
    await expect(async () => {
      for await (const _ of readListFile(file, { maxBytes: 500 })) void _;
    }).rejects.toThrow(/more than 500 bytes/);
  });
});

describe('fixtures written by Prosody (reference §4)', () => {
  it('accounts: SCRAM keys, UUID salt, integer iteration count', async () => {
    const text = await readFile(path.join(FIXTURES, 'accounts/alice.dat'));
    const t = parseDatFile(text) as LuaTable;
    expect(t.get('iteration_count')).toBe(10000);
    expect(t.get('salt')).toBe('66fac4e5-f6b9-4019-9560-c2b55f3a0642');
    expect(t.get('stored_key')).toBe('743454b6d2bd17f83beb2e1aba7b73ce86d9a5b8');
    // Key order is kept, so Prosody's own file comes back byte for byte.
    expect(serializeDatFile(t)).toBe(text.toString('latin1'));
  });

  it('roster with the [false] metadata and a preserialized pending presence', async () => {
    const text = await readFile(path.join(FIXTURES, 'roster/carol.dat'));
    const t = parseDatFile(text) as LuaTable;
    const meta = t.get(false) as LuaTable;
    expect(meta.get('version')).toBe(5);
    const presence = (meta.get('pending') as LuaTable).get('bob@localhost') as LuaTable;
    expect(presence.get('name')).toBe('presence');
    expect(((presence.array[0] as LuaTable).array[0])).toBe('Bob Example');
    expect((t.get('alice@example.test') as LuaTable).get('approved')).toBe('true');
    expect(canon(parseDatFile(serializeDatFile(t)))).toEqual(canon(t));
  });

  it('archive items: stanza table plus key/when/with and attr.stamp, non-ASCII as decimal escapes', async () => {
    const file = path.join(FIXTURES, 'archive/alice.list');
    const items: LuaValue[] = [];
    for await (const v of readListFile(file)) items.push(v);
    expect(items).toHaveLength(2);
    const [first, second] = items as [LuaTable, LuaTable];
    expect(first.get('key')).toBe('27_CC26HJJLWquPpf4XbdKJX');
    expect(first.get('when')).toBe(1795368740);
    expect((first.get('attr') as LuaTable).get('stamp')).toBe('2026-11-22T17:32:20Z');
    expect(second.get('with')).toBe('zoë.o_brien+tag%~@localhost');
    expect((second.array[0] as LuaTable).array[0]).toBe('5 < 6 && 7 > 3 "quoted" \\ tab\t Ελληνικά');
    expect(items.map(serializeListItem).join('')).toBe((await readFile(file)).toString('latin1'));
  });
});
