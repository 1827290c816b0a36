/**
 * Loading a configuration: a JSON file (`--config` or XPORTA_CONFIG) overlaid with XPORTA_*
 * environment variables, then validated once (src/config/validate.ts).
 */
import { readFileSync } from 'node:fs';
import { isObject, type Json, type JsonObject } from './fields.js';
import { ConfigError, type Config } from './types.js';
import { validate } from './validate.js';

const ENV_PREFIX = 'XPORTA_';
/** Variables with a meaning of their own, not field overrides. */
const ENV_RESERVED = new Set(['XPORTA_CONFIG', 'XPORTA_OPERATOR_TOKEN']);

export interface LoadOptions {
  /** Path given with --config; falls back to XPORTA_CONFIG; no file means defaults. */
  readonly configPath?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Directory relative paths in the config resolve against (the config file's by default). */
  readonly cwd?: string;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const path = options.configPath ?? env.XPORTA_CONFIG;
  const cwd = options.cwd ?? process.cwd();
  let raw: JsonObject = {};
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError('(file)', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (!isObject(parsed)) throw new Error('the top level must be an object');
      raw = parsed;
    } catch (err) {
      throw new ConfigError('(file)', `${path} is not valid JSON: ${(err as Error).message}`);
    }
  }
  applyEnvOverrides(raw, env);
  return validate(raw, cwd);
}

/**
 * `XPORTA_LISTEN__PORT=8080` sets `listen.port`: `__` separates levels, single `_` inside a
 * segment becomes camelCase (`XPORTA_LIMITS__MAX_UPLOAD_BYTES` → `limits.maxUploadBytes`).
 * Values that parse as JSON are taken as such (numbers, booleans, arrays); others as strings.
 */
function applyEnvOverrides(raw: JsonObject, env: NodeJS.ProcessEnv): void {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || ENV_RESERVED.has(name) || value === undefined) continue;
    const segments = name
      .slice(ENV_PREFIX.length)
      .split('__')
      .map((s) => s.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()));
    let target: JsonObject = raw;
    for (const segment of segments.slice(0, -1)) {
      const next = target[segment];
      if (isObject(next)) target = next;
      else target = target[segment] = {};
    }
    const leaf = segments[segments.length - 1];
    if (leaf) target[leaf] = parseEnvValue(value);
  }
}

function parseEnvValue(value: string): Json {
  try {
    return JSON.parse(value) as Json;
  } catch {
    return value;
  }
}
