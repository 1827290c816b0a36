/**
 * One stored value as a `(type, text)` pair, the encoding of mod_storage_sql.lua's
 * `serialize`/`deserialize`. xporta's opaque store records use it too, so it is shared here.
 */
import { ProsodyJsonError, decodeJson, encodeJson } from './json.js';
import { LuaFloat, LuaTable, isStanzaValue, luaNumberToString, parseLuaNumber, type LuaValue } from './lua.js';
import { parseXmlValue, serializeXmlValue } from './stanza.js';

export type StoredType = 'string' | 'number' | 'boolean' | 'json' | 'xml';

export interface StoredText {
  readonly type: StoredType;
  readonly value: string;
}

export class StoredValueError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoredValueError';
  }
}

export function serializeValue(value: LuaValue): StoredText {
  if (typeof value === 'string') return { type: 'string', value };
  if (typeof value === 'boolean') return { type: 'boolean', value: value ? 'true' : 'false' };
  if (typeof value === 'number' || value instanceof LuaFloat) return { type: 'number', value: luaNumberToString(value) };
  if (value instanceof LuaTable) return { type: 'json', value: encodeJson(value) };
  if (isStanzaValue(value)) return { type: 'xml', value: serializeXmlValue(value) };
  throw new StoredValueError('unhandled value type');
}

export function deserializeValue(type: string, value: string): LuaValue {
  switch (type) {
    case 'string':
      return value;
    case 'boolean':
      if (value === 'true') return true;
      if (value === 'false') return false;
      throw new StoredValueError(`invalid boolean ${JSON.stringify(value)}`);
    case 'number': {
      const n = parseLuaNumber(value);
      if (n === undefined) throw new StoredValueError(`invalid number ${JSON.stringify(value)}`);
      return n;
    }
    case 'json':
      try {
        return decodeJson(value);
      } catch (err) {
        if (err instanceof ProsodyJsonError) throw new StoredValueError(`invalid JSON: ${err.message}`, { cause: err });
        throw err;
      }
    case 'xml':
      try {
        return parseXmlValue(value);
      } catch (err) {
        throw new StoredValueError(`invalid XML: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    default:
      throw new StoredValueError(`unhandled value type ${JSON.stringify(type)}`);
  }
}
