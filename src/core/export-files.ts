/**
 * Downloadable exports: an account's document written once to a private file under
 * `dataDir/exports/`, then served as often as asked (with ranges) until it expires.
 *
 * Each export is two files: `<id>.xml` (the document) and `<id>.json` (what it holds, who may
 * fetch it, its size, strong ETag and expiry). The document is written under a temporary name and
 * renamed only when complete, and the metadata is written after it, so an export that is listed
 * is always whole. Ids are 128 random bits: not guessable, and checked against a strict pattern
 * before they become a path.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { directoryModeFor, type PrivateFileMode } from '../lib/private-files.js';

export interface ExportFile {
  readonly id: string;
  /** The bare JID whose data the file holds. */
  readonly jid: string;
  readonly kinds: readonly string[];
  readonly size: number;
  /** Strong entity tag (quoted), from the SHA-256 of the file's bytes. */
  readonly etag: string;
  readonly createdAt: string;
  readonly expiresAt: string;
}

const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

export class ExportFiles {
  constructor(
    /** The directory the files live in (`dataDir/exports`). */
    readonly dir: string,
    private readonly mode: PrivateFileMode,
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Writes `chunks` to a new export file, with backpressure, and returns its description. A
   * failure while writing leaves nothing behind.
   */
  async create(jid: string, kinds: readonly string[], chunks: AsyncIterable<Buffer>): Promise<ExportFile> {
    mkdirSync(this.dir, { recursive: true, mode: directoryModeFor(this.mode) });
    const id = randomBytes(16).toString('base64url');
    const partial = join(this.dir, `.${id}.partial`);
    const hash = createHash('sha256');
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(Readable.from(chunks, { objectMode: false }), tap, createWriteStream(partial, { flags: 'wx', mode: this.mode }));
      renameSync(partial, this.documentPath(id));
    } catch (err) {
      rmSync(partial, { force: true });
      throw err;
    }
    const created = this.now();
    const file: ExportFile = {
      id,
      jid,
      kinds: [...kinds],
      size,
      etag: `"${hash.digest('base64url')}"`,
      createdAt: new Date(created).toISOString(),
      expiresAt: new Date(created + this.ttlSeconds * 1000).toISOString(),
    };
    writeFileSync(this.metaPath(id), JSON.stringify(file), { mode: this.mode, flag: 'wx' });
    return file;
  }

  /** The export with this id, unless it does not exist or has expired (an expired one is removed). */
  get(id: string): ExportFile | undefined {
    if (!ID_PATTERN.test(id)) return undefined;
    let file: ExportFile;
    try {
      file = JSON.parse(readFileSync(this.metaPath(id), 'utf8')) as ExportFile;
    } catch {
      return undefined;
    }
    if (Date.parse(file.expiresAt) <= this.now()) {
      this.remove(id);
      return undefined;
    }
    return file;
  }

  /** Path of the export's document; only for an id {@link get} returned. */
  documentPath(id: string): string {
    return join(this.dir, `${id}.xml`);
  }

  /** Removes an export; false when there was none. A download already under way finishes (the open file stays readable). */
  remove(id: string): boolean {
    if (!ID_PATTERN.test(id)) return false;
    let existed = true;
    try {
      statSync(this.metaPath(id));
    } catch {
      existed = false;
    }
    // Metadata first: from that moment the export is gone for every new request.
    rmSync(this.metaPath(id), { force: true });
    rmSync(this.documentPath(id), { force: true });
    return existed;
  }

  /** Removes every expired export, and partial files left by a crash. Returns how many exports went. */
  sweep(): number {
    let entries: string[];
    try {
      entries = readdirSync(this.dir);
    } catch {
      return 0;
    }
    let removed = 0;
    for (const name of entries) {
      const meta = /^([A-Za-z0-9_-]{22})\.json$/.exec(name);
      if (meta?.[1] !== undefined && this.get(meta[1]) === undefined) removed++;
      const orphan = /^([A-Za-z0-9_-]{22})\.xml$/.exec(name);
      if (orphan?.[1] !== undefined && !entries.includes(`${orphan[1]}.json`)) rmSync(join(this.dir, name), { force: true });
      // A partial file older than a day belongs to a process that died while writing it.
      if (/^\.[A-Za-z0-9_-]{22}\.partial$/.test(name)) {
        try {
          if (statSync(join(this.dir, name)).mtimeMs < this.now() - 86_400_000) rmSync(join(this.dir, name), { force: true });
        } catch {
          // gone already
        }
      }
    }
    return removed;
  }

  private metaPath(id: string): string {
    return join(this.dir, `${id}.json`);
  }
}
