/**
 * Typed readers over the raw JSON of a configuration. Each names the field it complains about
 * (`limits.maxDepth: must be an integer from 8 to 1024`), so an operator can fix a deployment from
 * the first line of output; secrets may come from files (`…File` fields).
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from './types.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class Fields {
  constructor(
    private readonly obj: JsonObject,
    private readonly prefix: string,
    private readonly cwd: string,
  ) {}

  private path(key: string): string {
    return this.prefix ? `${this.prefix}.${key}` : key;
  }

  /** Rejects keys nobody reads: a typo must not silently fall back to a default. */
  only(keys: readonly string[]): void {
    for (const key of Object.keys(this.obj)) {
      if (!keys.includes(key)) throw new ConfigError(this.path(key), `unknown field (known: ${keys.join(', ')})`);
    }
  }

  object(key: string): Fields {
    const v = this.obj[key];
    if (v === undefined) return new Fields({}, this.path(key), this.cwd);
    if (!isObject(v)) throw new ConfigError(this.path(key), 'must be an object');
    return new Fields(v, this.path(key), this.cwd);
  }

  entries(key: string): [string, Fields][] {
    return Object.keys(this.object(key).obj).map((k) => [k, this.object(key).object(k)]);
  }

  array(key: string): Fields[] {
    const v = this.obj[key];
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new ConfigError(this.path(key), 'must be an array');
    return v.map((item, i) => {
      if (!isObject(item)) throw new ConfigError(`${this.path(key)}[${i}]`, 'must be an object');
      return new Fields(item, `${this.path(key)}[${i}]`, this.cwd);
    });
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined;
  }

  /** A non-empty string, `null`, or undefined when absent. */
  nullableString(key: string): string | null | undefined {
    if (this.obj[key] === null) return null;
    return this.has(key) ? this.string(key) : undefined;
  }

  /** One of `allowed`, or undefined when absent. */
  optionalOneOf<T extends string>(key: string, allowed: readonly T[]): T | undefined {
    return this.has(key) ? this.oneOf(key, allowed) : undefined;
  }

  string(key: string, fallback?: string): string {
    const v = this.obj[key];
    if (v === undefined) {
      if (fallback === undefined) throw new ConfigError(this.path(key), 'is required');
      return fallback;
    }
    if (typeof v !== 'string' || v === '') throw new ConfigError(this.path(key), `must be a non-empty string (got ${JSON.stringify(v)})`);
    return v;
  }

  optionalString(key: string): string | undefined {
    return this.obj[key] === undefined ? undefined : this.string(key);
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback?: T): T {
    const v = this.string(key, fallback);
    if (!(allowed as readonly string[]).includes(v)) {
      throw new ConfigError(this.path(key), `must be one of ${allowed.join(', ')} (got ${JSON.stringify(v)})`);
    }
    return v as T;
  }

  integer(key: string, fallback: number, min: number, max: number): number {
    const v = this.obj[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new ConfigError(this.path(key), `must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
    }
    return v;
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.obj[key] ?? fallback;
    if (typeof v !== 'boolean') throw new ConfigError(this.path(key), `must be true or false (got ${JSON.stringify(v)})`);
    return v;
  }

  stringArray(key: string, fallback: readonly string[]): string[] {
    const v = this.obj[key];
    if (v === undefined) return [...fallback];
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && s !== '')) {
      throw new ConfigError(this.path(key), `must be an array of non-empty strings (got ${JSON.stringify(v)})`);
    }
    return v as string[];
  }

  filePath(key: string, fallback?: string): string {
    const p = this.string(key, fallback);
    return isAbsolute(p) ? p : resolve(this.cwd, p);
  }

  /** A secret given inline (`key`) or read from a file (`keyFile`), never both. */
  secret(key: string): string | undefined {
    const fileKey = `${key}File`;
    if (this.has(key) && this.has(fileKey)) throw new ConfigError(this.path(key), `give either ${key} or ${fileKey}, not both`);
    if (this.has(key)) return this.string(key);
    if (!this.has(fileKey)) return undefined;
    const file = this.filePath(fileKey);
    try {
      const value = readFileSync(file, 'utf8').trim();
      if (value === '') throw new ConfigError(this.path(fileKey), `${file} is empty`);
      return value;
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(this.path(fileKey), `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
}
