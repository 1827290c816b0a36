import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LuaFloat, LuaTable, ProsodyJsonError, decodeJson, encodeJson, luaNumberToString, parseLuaNumber, type LuaValue } from '../../../src/storage/prosody/index.js';
import * as rows from '../../support/storage/prosody-rows.js';
import { comparable } from '../../support/storage/compare.js';
import { prosodyLuaAvailable, runProsodyLua } from '../../support/storage/lua.js';

const jsonRows = Object.values(rows)
  .filter((v): v is rows.Row[] => Array.isArray(v))
  .flat()
  .filter((r) => r.type === 'json');

describe('Prosody JSON (util/json.lua)', () => {
  it.each(jsonRows.map((r) => [`${r.store}/${r.key || '""'}`, r.value]))('re-encodes the stored row %s byte for byte', (_name, value) => {
    expect(encodeJson(decodeJson(value))).toBe(value);
  });

  it('reads __hash with a false key, as the roster metadata row has it', () => {
    const row = rows.CAROL_ROSTER_ROWS.find((r) => r.key === '')!;
    const table = decodeJson(row.value) as LuaTable;
    expect(table.hash.size).toBe(0);
    const meta = table.get(false) as LuaTable;
    expect(meta.get('version')).toBe(5);
    const presence = (meta.get('pending') as LuaTable).get('bob@localhost') as LuaTable;
    expect(presence.get('name')).toBe('presence');
    expect((presence.array[0] as LuaTable).array).toEqual(['Bob Example']);
  });

  it('writes non-string keys to __hash, an array part beside string keys to __array, a pure array as an array, {} for empty', () => {
    expect(encodeJson(new LuaTable().set(false, LuaTable.of({ version: 5 })).set(3, true).set('x', 1))).toBe(
      '{"x":1,"__hash":[false,{"version":5},3,true]}',
    );
    expect(encodeJson(LuaTable.of({ x: 1 }, ['a', 'b']))).toBe('{"x":1,"__array":["a","b"]}');
    expect(encodeJson(LuaTable.of({}, ['a', 'b']))).toBe('["a","b"]');
    expect(encodeJson(new LuaTable().set(1, 'a').set(3, 'c'))).toBe('{"__hash":[3,"c"],"__array":["a"]}');
    expect(encodeJson(new LuaTable())).toBe('{}');
    // A decoded empty array keeps util/json's array metatable.
    expect(encodeJson(decodeJson('{"a":[],"b":{}}'))).toBe('{"a":[],"b":{}}');
  });

  it('escapes only quote, backslash and C0 controls, upper-case \\u00XX, UTF-8 raw', () => {
    expect(encodeJson('x\u0001\u001f\u007f"\\/é\n\t\b\f\r🎻')).toBe('"x\\u0001\\u001F\u007f\\"\\\\/é\\n\\t\\b\\f\\r🎻"');
  });

  it('prints numbers as Lua 5.4 does: integers plain, floats %.14g with .0', () => {
    const cases: [number | LuaFloat, string][] = [
      [1, '1'],
      [2.5, '2.5'],
      [new LuaFloat(1), '1.0'],
      [new LuaFloat(1e20), '1e+20'],
      [0.1, '0.1'],
      [1 / 3, '0.33333333333333'],
      [new LuaFloat(-0), '-0.0'],
      [new LuaFloat(123456789012345), '1.2345678901234e+14'],
      [1e-5, '1e-05'],
      [Math.PI, '3.1415926535898'],
      [1795367897, '1795367897'],
    ];
    for (const [n, text] of cases) expect(luaNumberToString(n)).toBe(text);
    expect(encodeJson(LuaTable.of({}, cases.map(([n]) => n)))).toBe(`[${cases.map(([, t]) => t).join(',')}]`);
  });

  it('reads numbers as tonumber does: integer unless there is a fraction or exponent', () => {
    expect(parseLuaNumber('10000')).toBe(10000);
    expect(parseLuaNumber('1.0')).toEqual(new LuaFloat(1));
    expect(parseLuaNumber('1e2')).toEqual(new LuaFloat(100));
    expect(parseLuaNumber('0x10')).toBe(16);
    expect(parseLuaNumber('abc')).toBeUndefined();
    expect(encodeJson(decodeJson('[1e2]'))).toBe('[100.0]');
  });

  it('accepts members in any order, whitespace, every escape, and surrogate pairs', () => {
    const a = decodeJson('{"__array":[1,2],"__hash":[false,1,5,"x"],"k":"v"}') as LuaTable;
    const b = decodeJson(' { "k" : "v" , "__hash" : [ 5 , "x" , false , 1 ] , "__array" : [ 1 , 2 ] } ') as LuaTable;
    for (const t of [a, b]) {
      expect(t.array).toEqual([1, 2]);
      expect(t.get(false)).toBe(1);
      expect(t.get(5)).toBe('x');
      expect(t.get('k')).toBe('v');
    }
    expect(decodeJson('"\\u00e9\\ud83c\\udfbb\\/\\"\\\\\\b\\f\\n\\r\\t"')).toBe('é🎻/"\\\b\f\n\r\t');
  });

  it('refuses what util/json.lua refuses', () => {
    for (const bad of ['{"a":1,}', '[1,]', '{"a" 1}', '"\\ud800"', '[1] x', 'nul', '"abc']) {
      expect(() => decodeJson(bad), bad).toThrow(ProsodyJsonError);
    }
    expect(() => encodeJson(Infinity)).toThrow(ProsodyJsonError);
  });

  it('round-trips arbitrary Lua values', () => {
    fc.assert(
      fc.property(luaValue, (value) => {
        const text = encodeJson(value);
        expect(encodeJson(decodeJson(text))).toBe(text);
      }),
      { numRuns: 300 },
    );
  });

  it.runIf(prosodyLuaAvailable())('formats floats exactly as Lua 5.4’s tostring', () => {
    const doubles = [
      123456789012345, 0.5, 1.25e-7, 2 ** 60, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, 99999999999999.5, 999999999999995,
      ...fc.sample(fc.double({ noNaN: true, noDefaultInfinity: true }), { numRuns: 500, seed: 7 }),
    ];
    const script = `for line in io.lines() do print(tostring(tonumber(line) * 1.0)) end`;
    const lua = runProsodyLua(script, `${doubles.map((d) => (Object.is(d, -0) ? '-0.0' : d.toPrecision(17))).join('\n')}\n`).trimEnd().split('\n');
    expect(doubles.map((d) => luaNumberToString(new LuaFloat(d)))).toEqual(lua);
  });

  it.runIf(prosodyLuaAvailable())('agrees with Prosody’s util/json.lua both ways', () => {
    const values = fc.sample(luaValue, { numRuns: 300, seed: 0x227 });
    const ours = values.map(encodeJson);
    // Lua decodes our text and encodes it again: reading that back must give the same values.
    const script = `local json = require "util.json"; for line in io.lines() do print(json.encode(json.decode(line))) end`;
    const theirs = runProsodyLua(script, `${ours.join('\n')}\n`).trimEnd().split('\n');
    expect(theirs).toHaveLength(values.length);
    theirs.forEach((text, i) => expect(comparable(decodeJson(text)), text).toEqual(comparable(decodeJson(ours[i] as string))));
  });
});

/** Strings a UTF-8 database can hold: no lone surrogates. */
const wellFormed = fc
  .string({ unit: 'binary', maxLength: 12 })
  .filter((s) => !/\p{Surrogate}/u.test(s) && s !== '__array' && s !== '__hash');
const luaScalar: fc.Arbitrary<LuaValue> = fc.oneof(
  wellFormed,
  fc.boolean(),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => new LuaFloat(d)),
);
const luaValue: fc.Arbitrary<LuaValue> = fc.letrec<{ value: LuaValue; table: LuaTable }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, luaScalar, tie('table')),
  table: fc
    .record({
      hash: fc.array(fc.tuple(wellFormed, tie('value')), { maxLength: 4 }),
      array: fc.array(tie('value'), { maxLength: 4 }),
      others: fc.array(fc.tuple(fc.oneof(fc.boolean(), fc.integer({ min: 10, max: 20 })), tie('value')), { maxLength: 3 }),
    })
    .map(({ hash, array, others }) => {
      const table = LuaTable.of({}, array);
      for (const [k, v] of hash) table.set(k, v);
      for (const [k, v] of others) table.set(k, v);
      return table;
    }),
})).value;
