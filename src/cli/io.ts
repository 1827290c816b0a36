/**
 * The CLI's input and output plumbing: compressed input recognised by its content, export output
 * to a file (written whole or not at all) and/or gzip, and a progress line on a terminal.
 */
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, createGunzip } from 'node:zlib';
import type { PrivateFileMode } from '../lib/private-files.js';
import type { DocumentEvent } from '../records/model.js';

/**
 * `source` decompressed when it starts with gzip's magic bytes (1f 8b), as it is otherwise: a
 * document on standard input or under any file name is recognised by what it holds. A read
 * error (a missing file) is thrown here, before anything else was done.
 */
export async function decompressedByContent(source: Readable): Promise<Readable> {
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head = Buffer.alloc(0);
  let ended = false;
  while (head.length < 2) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    head = Buffer.concat([head, Buffer.from(next.value)]);
  }
  async function* rest(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (ended) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield Buffer.from(next.value);
    }
  }
  const body = Readable.from(rest(), { objectMode: false });
  if (head[0] !== 0x1f || head[1] !== 0x8b) return body;
  const out = new PassThrough();
  pipeline(body, createGunzip(), out).catch((err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))));
  return out;
}

export interface ExportOutput {
  /** Where the document is written. */
  readonly stream: Writable;
  /** Flushes everything; a file appears under its name only now. */
  finish(): Promise<void>;
  /** Drops a partial file. */
  abort(): void;
}

/**
 * Standard output, or `file` (created with `mode`: an export holds credentials), optionally
 * gzip-compressed. A file is written under a temporary name in the same directory and renamed
 * once complete, so a failed export never leaves a truncated document under the asked name.
 */
export function exportOutput(options: { file?: string; gzip?: boolean; mode: PrivateFileMode; stdout: Writable }): ExportOutput {
  const { file, gzip, mode, stdout } = options;
  const partial = file !== undefined ? join(dirname(file), `.${basename(file)}.${process.pid}.partial`) : undefined;
  const target: Writable = partial !== undefined ? createWriteStream(partial, { flags: 'wx', mode }) : stdout;
  const compressor = gzip ? createGzip() : undefined;
  const flowing = compressor ? pipeline(compressor, target, { end: partial !== undefined }) : undefined;
  flowing?.catch(() => undefined);
  return {
    stream: compressor ?? target,
    async finish() {
      if (compressor) {
        compressor.end();
        await flowing;
      } else if (partial !== undefined) {
        await new Promise<void>((resolve, reject) => {
          target.once('error', reject);
          target.end(() => resolve());
        });
      }
      if (partial !== undefined && file !== undefined) renameSync(partial, file);
    },
    abort() {
      compressor?.destroy();
      if (partial !== undefined) {
        target.destroy();
        rmSync(partial, { force: true });
      }
    },
  };
}

/** What a transfer reports as it goes. */
export interface TransferObserver {
  event(event: DocumentEvent): void;
  bytes(count: number): void;
}

const REDRAW_MS = 250;

/**
 * A one-line progress display on a terminal (stderr): records, messages (archived and offline),
 * bytes and the record rate, redrawn in place at most four times a second and left on screen at
 * the end. Writes nothing when the stream is not a terminal.
 */
export class ProgressLine implements TransferObserver {
  private records = 0;
  private messages = 0;
  private byteCount = 0;
  private readonly started = Date.now();
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly verb: string,
  ) {}

  static for(out: NodeJS.WriteStream, verb: string, quiet: boolean): TransferObserver | undefined {
    return !quiet && out.isTTY === true ? new ProgressLine(out, verb) : undefined;
  }

  event(event: DocumentEvent): void {
    if (event.kind === 'host' || event.kind === 'host-end' || event.kind === 'user' || event.kind === 'user-end') return;
    this.records++;
    if (event.kind === 'archive' || event.kind === 'offline') this.messages++;
    this.maybeDraw();
  }

  bytes(count: number): void {
    this.byteCount += count;
    this.maybeDraw();
  }

  /** Draws the final figures and ends the line. */
  done(): void {
    this.draw();
    if (this.drawn) this.out.write('\n');
  }

  private maybeDraw(): void {
    const now = Date.now();
    if (now - this.lastDraw >= REDRAW_MS) this.draw(now);
  }

  private draw(now = Date.now()): void {
    this.lastDraw = now;
    this.drawn = true;
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const line = `${this.verb}: ${this.records.toLocaleString('en')} records, ${this.messages.toLocaleString('en')} messages, ${formatBytes(this.byteCount)}, ${Math.round(this.records / seconds).toLocaleString('en')} records/s`;
    this.out.write(`\r\x1b[2K${line}`);
  }
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
