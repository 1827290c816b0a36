/**
 * Streaming XEP-0227 reader: bytes in, document events out. The parts live in read/: input.ts
 * (bytes, decoding, feeding saxes, the archive fast path), structure.ts (what each element is),
 * records.ts (element trees to records), xinclude.ts (included files). This module drives the
 * parsers over their sources, reading an included file where its `<xi:include>` stood.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { DocumentEvent } from '../records/model.js';
import { SLICE, Shared, type ReaderOptions } from './read/shared.js';
import { DocumentParser } from './read/structure.js';
import { IncludeRequest, includedDocument } from './read/xinclude.js';

export type { ReaderOptions } from './read/shared.js';
export { validateJid } from './read/records.js';

/**
 * The events of one document. Each slice's events are taken before the next slice is parsed, and
 * yielded here rather than by a generator of its own: each level of `yield*` costs every event a
 * promise.
 */
async function* drive(source: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>, parser: DocumentParser): AsyncGenerator<DocumentEvent> {
  for await (const chunk of source) {
    parser.feed(chunk);
    while (parser.parseSlice()) {
      for (const item of parser.take()) {
        if (item instanceof IncludeRequest) yield* include(item, parser);
        else yield item;
      }
      // Events that came before the error in the same slice are still delivered, in order.
      if (parser.failure) throw parser.failure;
    }
  }
  parser.end();
  for (const item of parser.take()) {
    if (item instanceof IncludeRequest) yield* include(item, parser);
    else yield item;
  }
  if (parser.failure) throw parser.failure;
}

async function* include(request: IncludeRequest, parent: DocumentParser): AsyncGenerator<DocumentEvent> {
  const { file, ctx } = await includedDocument(request, parent.shared, parent.ctx);
  yield* drive(createReadStream(file, { highWaterMark: SLICE }), new DocumentParser(parent.shared, ctx));
}

/**
 * Parses a XEP-0227 document into events, in document order: `host`, `user`, the user's
 * records, `user-end`, …, `host-end`. Throws {@link Xep0227Error} for documents it refuses
 * (after yielding the events that came before the problem); I/O errors of `source` pass through.
 */
export function readDocument(
  source: string | Uint8Array | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string> | Readable,
  options: ReaderOptions = {},
): AsyncGenerator<DocumentEvent> {
  const shared = new Shared(options);
  const parser = new DocumentParser(shared, {
    roots: new Set(options.roots ?? ['server-data']),
    depthOffset: 0,
    includeDepth: 0,
    dir: options.baseDir,
    source: undefined,
    host: undefined,
  });
  // A whole document in memory is one chunk, not an iterable of characters or numbers.
  const chunks = typeof source === 'string' || source instanceof Uint8Array ? [source] : source;
  // The driver's generator itself, not one delegating to it: one `yield*` less for every event.
  return drive(chunks as AsyncIterable<Uint8Array | string>, parser);
}
