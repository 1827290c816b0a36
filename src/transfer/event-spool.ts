/**
 * A host import's parsed document kept on disk between its passes: the validating pass writes
 * each event as it reads it ({@link EventSpoolWriter}), and the apply pass, and each retry, reads
 * the events back ({@link readEventSpool}) instead of parsing the XML a second time.
 *
 * A line per event, as JSON (events are plain data: strings, numbers, booleans, arrays and
 * objects; a property whose value is undefined is left out, as if absent). An element the reader
 * kept as its stored text (an archived message: see xml/stored-element.ts) is written as that
 * text and made again as such, so it is neither parsed nor serialized on the way.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import type { DocumentEvent, XmlElement } from '../records/model.js';
import { scannedElement, storedText } from '../xml/stored-element.js';

/** Characters gathered before a write. */
const WRITE_CHUNK = 1 << 16;
/** Bytes of a read. */
const READ_CHUNK = 1 << 16;

/** A stored element of a record's field: its text, namespace, name and attributes (as scannedElement takes them). */
type StoredField = [field: string, xml: string, xmlns: string, name: string, attrs: Record<string, string>];

/**
 * The element's text when it is a stored element whose attributes were read with its start tag
 * (what the reader makes); undefined for any other element, which is written as it is.
 */
function storedFieldOf(field: string, value: unknown): StoredField | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const el = value as XmlElement;
  if (typeof el.xmlns !== 'string') return undefined;
  const xml = storedText(el, el.xmlns);
  // Attributes behind an accessor would be parsed to be read: such an element goes as a tree.
  if (xml === undefined || Object.getOwnPropertyDescriptor(el, 'attrs')?.get !== undefined) return undefined;
  return [field, xml, el.xmlns, el.name, el.attrs];
}

function encode(event: DocumentEvent): string {
  let stored: StoredField[] | undefined;
  let copy: Record<string, unknown> | undefined;
  for (const field in event) {
    const found = storedFieldOf(field, (event as unknown as Record<string, unknown>)[field]);
    if (!found) continue;
    (stored ??= []).push(found);
    copy ??= { ...event };
    copy[field] = null;
  }
  // JSON escapes every newline inside a string: a line is one event.
  return `${JSON.stringify(stored ? [copy, stored] : [event])}\n`;
}

function decode(line: string): DocumentEvent {
  const [event, stored] = JSON.parse(line) as [Record<string, unknown>, StoredField[] | undefined];
  if (stored) for (const [field, xml, xmlns, name, attrs] of stored) event[field] = scannedElement(xml, xmlns, name, attrs);
  return event as unknown as DocumentEvent;
}

/** Writes events to a new file; {@link close} before reading it. */
export class EventSpoolWriter {
  private pending = '';
  private written = 0;

  private constructor(private readonly file: FileHandle) {}

  /** Creates `path` (which must not exist) with `mode`. */
  static async create(path: string, mode: number): Promise<EventSpoolWriter> {
    return new EventSpoolWriter(await open(path, 'wx', mode));
  }

  async write(event: DocumentEvent): Promise<void> {
    this.pending += encode(event);
    // Characters, not bytes: a chunk of about the size wanted.
    if (this.pending.length >= WRITE_CHUNK) await this.flush();
  }

  /** Bytes in the file (once closed). */
  get size(): number {
    return this.written;
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.file.close();
    }
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const chunk = Buffer.from(this.pending, 'utf8');
    this.pending = '';
    await this.file.write(chunk, 0, chunk.length);
    this.written += chunk.length;
  }
}

/** Writes each of `events` to `spool` as it passes them on. */
export async function* spoolingEvents(events: AsyncIterable<DocumentEvent>, spool: EventSpoolWriter): AsyncGenerator<DocumentEvent> {
  for await (const event of events) {
    await spool.write(event);
    yield event;
  }
}

/** The events of a spool written by {@link EventSpoolWriter}, in order; `onBytes` is told of each chunk read. */
export async function* readEventSpool(path: string, onBytes?: (bytes: number) => void): AsyncGenerator<DocumentEvent> {
  let rest: Buffer = Buffer.alloc(0);
  const source = createReadStream(path, { highWaterMark: READ_CHUNK });
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      onBytes?.(chunk.length);
      // A newline byte is never part of a multi-byte character: lines split the bytes safely.
      const data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
      const end = data.lastIndexOf(0x0a);
      if (end < 0) {
        rest = data;
        continue;
      }
      const lines = data.toString('utf8', 0, end).split('\n');
      rest = data.subarray(end + 1);
      for (const line of lines) yield decode(line);
    }
  } finally {
    source.destroy();
  }
  if (rest.length > 0) throw new Error(`the event spool ${path} ends inside a line`);
}
