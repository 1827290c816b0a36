/**
 * The Lua subset of Prosody's internal storage cross-checked with Prosody's own
 * util/serialization.lua run by a real Lua 5.4 (a child process): Lua reads what xporta writes as
 * the same value and writes it back as xporta would. The parser and serializer alone are in lua.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LuaFloat, LuaTable, type LuaValue } from '../../../src/storage/prosody/lua.js';
import { parseDatFile, parseListItems } from '../../../src/storage/prosody-files/lua-parse.js';
import { serializeListItem, serializeLuaNumber } from '../../../src/storage/prosody-files/lua-serialize.js';
import { LUA, canon, luaAvailable, luaRoundTrip, PROSODY_LIB } from '../../support/storage/lua.js';
import { FIXTURES_DIR } from '../../support/paths.js';

const FIXTURES = path.join(FIXTURES_DIR, 'prosody-files/data/localhost');

// ---------------------------------------------------------------------------------------------
// Against the real thing

/**
 * Loads `item(...)` statements the way util/datamanager.lua list_load does (load() with an empty
 * environment but `item`) and prints each value again with Prosody's serializer.
 */
const ROUND_TRIP_LUA = `
package.path = ${JSON.stringify(`${PROSODY_LIB}/?.lua;`)} .. package.path
local serialize = require "util.serialization".serialize
local text = io.read("a")
local items = {}
local f = assert(load(text, "=input", "t", { item = function (v) items[#items + 1] = v end }))
f()
for i = 1, #items do io.write("item(", serialize(items[i]), ");\\n") end
`;

function prosodyRoundTrip(listText: string): string {
  const result = spawnSync(LUA, ['-e', ROUND_TRIP_LUA], { input: listText, encoding: 'latin1', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`lua failed: ${result.stderr}`);
  return result.stdout;
}

const luaString = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('', '\u0000', '"\'\\', '\n\r\t', 'zoë.o_brien+tag%~', '🎻', '\u007f\u0080'));
const luaScalar = fc.oneof(
  luaString,
  fc.maxSafeInteger(),
  fc.integer({ min: -1000, max: 1000 }),
  fc.double().map((x) => new LuaFloat(x)),
  fc.boolean(),
);
const luaKey = fc.oneof(fc.boolean(), fc.integer({ min: -5, max: 50 }), fc.double({ noNaN: true }).map((x) => new LuaFloat(x)));

const luaValue: fc.Arbitrary<LuaValue> = fc.letrec<{ value: LuaValue; table: LuaTable }>((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, luaScalar, tie('table')),
  table: fc
    .record({
      array: fc.array(tie('value'), { maxLength: 4 }),
      hash: fc.dictionary(luaString, tie('value'), { maxKeys: 4 }),
      others: fc.array(fc.tuple(luaKey, tie('value')), { maxLength: 3 }),
    })
    .map(({ array, hash, others }) => {
      const t = LuaTable.of({}, array);
      for (const [k, v] of Object.entries(hash)) t.set(k, v);
      for (const [k, v] of others) t.set(k, v);
      return t;
    }),
})).value;

describe.skipIf(!luaAvailable(['util/serialization.lua']))("cross-checked with Prosody's util/serialization.lua", () => {
  it('Lua reads what we write as the same value, and writes it back as we would', () => {
    fc.assert(
      fc.property(fc.array(luaValue, { minLength: 1, maxLength: 30 }), (values) => {
        const ours = values.map(serializeListItem).join('');
        const theirs = prosodyRoundTrip(ours);
        const back = parseListItems(theirs);
        expect(back.map(canon)).toEqual(values.map((v) => canon(luaRoundTrip(v))));
        // Text identical wherever Lua's key order cannot differ (no table with two keyed entries).
        values.forEach((v, i) => {
          const keyed = (t: LuaValue): boolean =>
            t instanceof LuaTable && (t.hash.size + t.otherEntries().length > 1 || [...t.entries()].some(([, x]) => keyed(x)));
          if (!keyed(v)) expect(serializeListItem(back[i] as LuaValue)).toBe(serializeListItem(luaRoundTrip(v)));
        });
      }),
      { numRuns: 40 },
    );
  });

  it('formats doubles exactly as C %.18g', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: 50, maxLength: 200 }), (xs) => {
        const floats = xs.filter((x) => !Number.isInteger(x));
        const ours = floats.map((x) => `item(${serializeLuaNumber(x)});\n`).join('');
        expect(prosodyRoundTrip(ours)).toBe(ours);
      }),
      { numRuns: 20 },
    );
    const ties = [1 + 2 ** -18, 3 + 2 ** -17, 0.5 + 2 ** -20, 1e-5, 5e-324, 1.7976931348623157e308, 123456789.12345679];
    const text = ties.map((x) => `item(${serializeLuaNumber(x)});\n`).join('');
    expect(prosodyRoundTrip(text)).toBe(text);
  });

  it('parses what Prosody writes for the fixture values', async () => {
    for (const file of ['accounts/alice.dat', 'roster/carol.dat', 'vcard/carol.dat']) {
      const text = (await readFile(path.join(FIXTURES, file))).toString('latin1');
      const value = parseDatFile(text) as LuaValue;
      const again = prosodyRoundTrip(serializeListItem(value));
      expect(canon(parseListItems(again)[0])).toEqual(canon(value));
    }
  });
});
