/** A new file being written under its temporary name, or, in a dry run, only measured. */
import { createReadStream } from 'node:fs';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import { applyOwnership, ownershipFor } from './durable-fs.js';

const WRITE_CHUNK = 256 * 1024;

/** A file being written to its temporary name. */
export interface StagedFile {
  readonly path: string;
  write(text: string): Promise<void>;
  /** Appends bytes; the caller may reuse `data` once the promise settles. */
  writeBytes(data: Uint8Array): Promise<void>;
  /** Appends another file's bytes unchanged. */
  appendFileContents(source: string): Promise<void>;
  /** Bytes written so far. */
  readonly bytes: number;
}

export class TempFile implements StagedFile {
  private handle: FileHandle | undefined;
  private buffered: string[] = [];
  private bufferedLength = 0;
  bytes = 0;

  constructor(
    readonly path: string,
    readonly temp: string,
  ) {}

  async open(): Promise<void> {
    // Private until finished: it may hold credentials; finish() gives it the final mode.
    this.handle = await open(this.temp, 'wx', 0o600);
  }

  async write(text: string): Promise<void> {
    this.buffered.push(text);
    this.bufferedLength += text.length;
    if (this.bufferedLength >= WRITE_CHUNK) await this.flush();
  }

  async writeBytes(data: Uint8Array): Promise<void> {
    await this.flush();
    if (!this.handle) throw new Error('file is closed');
    if (data.length === 0) return;
    await this.handle.write(data);
    this.bytes += data.length;
  }

  private async flush(): Promise<void> {
    if (this.bufferedLength === 0 || !this.handle) return;
    const data = Buffer.from(this.buffered.join(''), 'utf8');
    this.buffered = [];
    this.bufferedLength = 0;
    await this.handle.write(data);
    this.bytes += data.length;
  }

  async appendFileContents(source: string): Promise<void> {
    await this.flush();
    if (!this.handle) throw new Error('file is closed');
    let last = 0x0a;
    for await (const chunk of createReadStream(source)) {
      const data = chunk as Buffer;
      if (data.length === 0) continue;
      await this.handle.write(data);
      this.bytes += data.length;
      last = data[data.length - 1] as number;
    }
    // What follows must start on a line of its own, as Prosody's next append would.
    if (last !== 0x0a) await this.write('\n');
  }

  /** Take over the original's owner and mode, flush, fsync, close. */
  async finish(): Promise<void> {
    if (!this.handle) return;
    await this.flush();
    await applyOwnership(this.temp, await ownershipFor(this.path));
    await this.handle.sync();
    await this.handle.close();
    this.handle = undefined;
  }

  async discard(): Promise<void> {
    await this.handle?.close().catch(() => undefined);
    this.handle = undefined;
    await rm(this.temp, { force: true });
  }
}

/** What a dry run writes: nothing, but the same sizes. */
export class NullFile implements StagedFile {
  bytes = 0;
  constructor(readonly path: string) {}
  write(text: string): Promise<void> {
    this.bytes += Buffer.byteLength(text, 'utf8');
    return Promise.resolve();
  }
  writeBytes(data: Uint8Array): Promise<void> {
    this.bytes += data.length;
    return Promise.resolve();
  }
  async appendFileContents(source: string): Promise<void> {
    this.bytes += (await stat(source)).size;
  }
}
