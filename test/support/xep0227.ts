import { createReadStream } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { Xep0227Error, type Xep0227ErrorCode } from '../../src/xep0227/errors.js';
import type { DocumentEvent } from '../../src/records/model.js';
import { readDocument, type ReaderOptions } from '../../src/xep0227/reader.js';
import { writeDocument } from '../../src/xep0227/writer.js';
import { FIXTURES_DIR } from './paths.js';

export const FIXTURES = path.join(FIXTURES_DIR, 'xep0227');

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

export function readString(xml: string | Uint8Array, options?: ReaderOptions): Promise<DocumentEvent[]> {
  return collect(readDocument([xml], options));
}

export function readFixture(relative: string, options?: ReaderOptions): Promise<DocumentEvent[]> {
  return collect(readDocument(createReadStream(path.join(FIXTURES, relative)), options));
}

export async function writeString(events: Iterable<DocumentEvent> | AsyncIterable<DocumentEvent>): Promise<string> {
  const chunks = await collect(writeDocument(events));
  return Buffer.concat(chunks).toString('utf8');
}

/** Runs the reader to its end and returns the error it threw. */
export async function readError(
  source: string | Uint8Array | Iterable<string | Uint8Array>,
  options?: ReaderOptions,
): Promise<Xep0227Error> {
  const input = typeof source === 'string' || source instanceof Uint8Array ? [source] : source;
  try {
    await collect(readDocument(input, options));
  } catch (err) {
    expect(err).toBeInstanceOf(Xep0227Error);
    return err as Xep0227Error;
  }
  throw new Error('the reader accepted the document');
}

export async function expectRejection(
  source: string | Uint8Array | Iterable<string | Uint8Array>,
  code: Xep0227ErrorCode,
  line: number,
  column: number,
  options?: ReaderOptions,
): Promise<Xep0227Error> {
  const err = await readError(source, options);
  expect({ code: err.code, line: err.line, column: err.column, message: err.message }).toMatchObject({ code, line, column });
  return err;
}

/** 1-based line and column of the first occurrence of `needle` (columns in code points). */
export function positionOf(text: string, needle: string, from = 0): { line: number; column: number } {
  const index = text.indexOf(needle, from);
  if (index === -1) throw new Error(`${needle} not in text`);
  const before = text.slice(0, index);
  const line = before.split('\n').length;
  const lineStart = before.lastIndexOf('\n') + 1;
  return { line, column: [...text.slice(lineStart, index)].length + 1 };
}
