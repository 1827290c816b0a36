/** Reading Prosody's internal-storage files, with format problems reported as `invalid-data`. */
import { readFile, readdir, stat } from 'node:fs/promises';
import { StorageError } from '../backend.js';
import type { ArchiveItem } from '../prosody/archive.js';
import { LuaTable, type LuaValue } from '../prosody/lua.js';
import { LuaParseError, parseDatFile, readListFile, DEFAULT_MAX_BYTES, type LuaParseLimits } from './lua-parse.js';
import { ListItemError, archiveItemFromList } from './list-items.js';
import { decodeCanonical, getpath, hostDir, storeDir, type FileExtension } from './paths.js';
import { isNotFound } from './durable-fs.js';

export interface FileLimits {
  /** Largest `.dat` file read. Default 64 MiB. */
  readonly maxFileBytes?: number;
  /** Largest single `.list` item read. Default 64 MiB. */
  readonly maxItemBytes?: number;
  /** Deepest table nesting read. Default 127 (the most Prosody writes). */
  readonly maxDepth?: number;
}

export class FileStore {
  constructor(
    readonly dataDir: string,
    private readonly limits: FileLimits = {},
  ) {}

  path(host: string, store: string, user: string, ext: FileExtension): string {
    return getpath(this.dataDir, host, store, user, ext);
  }

  private describe(path: string): string {
    return path.startsWith(this.dataDir) ? path.slice(this.dataDir.length + 1) : path;
  }

  fail(path: string, err: unknown): never {
    if (err instanceof StorageError) throw err;
    if (err instanceof LuaParseError || err instanceof ListItemError) {
      throw new StorageError('invalid-data', `${this.describe(path)}: ${err.message}`, { cause: err });
    }
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (code !== undefined) {
      throw new StorageError('unavailable', `${this.describe(path)}: ${(err as Error).message}`, { cause: err });
    }
    throw new StorageError('invalid-data', `${this.describe(path)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }

  private parseLimits(maxBytes: number | undefined): LuaParseLimits {
    return { maxBytes: maxBytes ?? DEFAULT_MAX_BYTES, ...(this.limits.maxDepth !== undefined ? { maxDepth: this.limits.maxDepth } : {}) };
  }

  /** A `.dat` file's value; undefined when there is no file. */
  async readDat(path: string): Promise<LuaValue | undefined> {
    try {
      const max = this.limits.maxFileBytes ?? DEFAULT_MAX_BYTES;
      const size = (await stat(path)).size;
      if (size > max) throw new LuaParseError(`file of ${size} bytes is larger than the limit of ${max}`, 1);
      return parseDatFile(await readFile(path), this.parseLimits(this.limits.maxFileBytes));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      return this.fail(path, err);
    }
  }

  /** A keyval store's table; undefined when there is none or it is empty (Prosody deletes those). */
  async readTable(path: string): Promise<LuaTable | undefined> {
    const value = await this.readDat(path);
    if (value === undefined) return undefined;
    if (!(value instanceof LuaTable)) this.fail(path, new LuaParseError('the stored value is not a table', 1));
    return value.isEmpty ? undefined : value;
  }

  /** A `.list` file's raw items in order, streamed; nothing when there is no file. */
  async *readListValues(path: string, signal?: AbortSignal): AsyncGenerator<LuaValue> {
    try {
      yield* readListFile(path, { ...this.parseLimits(this.limits.maxItemBytes), ...(signal ? { signal } : {}) });
    } catch (err) {
      if (isNotFound(err)) return;
      this.fail(path, err);
    }
  }

  /** A `.list` file's items as archive items (values still preserialized tables). */
  async *readList(path: string, signal?: AbortSignal): AsyncGenerator<ArchiveItem> {
    let position = 0;
    for await (const value of this.readListValues(path, signal)) {
      position++;
      try {
        yield archiveItemFromList(value, position);
      } catch (err) {
        this.fail(path, err);
      }
    }
  }

  /** Decoded names of the entries of a directory that Prosody itself would have named so. */
  private async entries(dir: string, filter: (name: string, isDir: boolean) => string | undefined): Promise<string[]> {
    let names: { name: string; isDirectory(): boolean }[];
    try {
      names = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isNotFound(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      return this.fail(dir, err);
    }
    const out: string[] = [];
    for (const entry of names) {
      const decoded = filter(entry.name, entry.isDirectory());
      if (decoded !== undefined) out.push(decoded);
    }
    return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Host directories (`_global` and dot files excluded). */
  hosts(): Promise<string[]> {
    return this.entries(this.dataDir, (name, isDir) => (isDir ? decodeCanonical(name) : undefined));
  }

  /** Users with a file of this store (datamanager `users`). */
  users(host: string, store: string, ext: FileExtension): Promise<string[]> {
    const suffix = `.${ext}`;
    return this.entries(storeDir(this.dataDir, host, store), (name, isDir) =>
      !isDir && name.endsWith(suffix) ? decodeCanonical(name.slice(0, -suffix.length)) : undefined,
    );
  }

  /** The stores in which `user` has a file of this kind (datamanager `stores`). */
  async userStores(host: string, user: string, ext: FileExtension): Promise<string[]> {
    const stores = await this.entries(hostDir(this.dataDir, host), (name, isDir) => (isDir ? decodeCanonical(name, true) : undefined));
    const found: string[] = [];
    for (const store of stores) {
      try {
        if ((await stat(this.path(host, store, user, ext))).isFile()) found.push(store);
      } catch (err) {
        if (!isNotFound(err)) this.fail(this.path(host, store, user, ext), err);
      }
    }
    return found;
  }
}
