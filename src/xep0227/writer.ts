/**
 * Streaming XEP-0227 serializer: document events in, UTF-8 chunks out.
 *
 * The writer is a pull-based generator: it takes the next event from its source only when the
 * consumer asks for more output and less than one chunk is buffered, so a slow HTTP client slows
 * the storage read down instead of filling memory.
 */
import { Readable } from 'node:stream';
import { NS, type DocumentEvent } from '../records/model.js';
import { XmlCharError, escapeAttribute } from '../xml/escape.js';
import { serializeElement } from '../xml/serialize.js';
import { writeVerbatim } from '../xml/stored-element.js';
import {
  ARCHIVE_RESULT_END,
  XP,
  archiveResultStart,
  blocklistElement,
  offlineMessage,
  pendingPresence,
  pepItemElement,
  pepNodeElements,
  privacyElement,
  rosterElement,
  scramElement,
  userStartTag,
} from './write/elements.js';

/** Size of the chunks the writer yields (the last one may be smaller). */
export const WRITER_CHUNK_BYTES = 64 * 1024;

export const XML_DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n";

/** The container a run of records of one kind is written into. */
type Container =
  | { readonly kind: 'private' }
  | { readonly kind: 'pep-node' }
  | { readonly kind: 'pep-item'; readonly node: string }
  | { readonly kind: 'archive' }
  | { readonly kind: 'offline' };

const ARCHIVE_RESULT_END_LINE = `${ARCHIVE_RESULT_END}\n`;

const CLOSE_TAGS: Record<Container['kind'], string> = {
  private: '</query>',
  'pep-node': '</pubsub>',
  'pep-item': '</items></pubsub>',
  archive: '</archive>',
  offline: '</offline-messages>',
};

/** Where {@link ChunkBuffer.rollback} returns to: the bytes written before it. */
type Mark = number;

/**
 * Encodes output text straight into chunks of exactly {@link WRITER_CHUNK_BYTES} bytes. Text is
 * written into the current chunk as it comes rather than kept and joined: a joined chunk would be
 * one more copy of every byte, and the strings kept until the join would outlive the young
 * generation (an export of a million messages spent more on that than on encoding).
 */
class ChunkBuffer {
  /** Chunks filled since the last drain. */
  private full: Buffer[] = [];
  private current: Buffer = Buffer.allocUnsafe(WRITER_CHUNK_BYTES);
  private offset = 0;

  /** The position to {@link rollback} to; valid until the next drain. */
  get mark(): Mark {
    return this.full.length * WRITER_CHUNK_BYTES + this.offset;
  }

  rollback(mark: Mark): void {
    const chunks = Math.floor(mark / WRITER_CHUNK_BYTES);
    if (chunks < this.full.length) {
      // The chunk the mark is in was filled after it: it is the current one again, partly written.
      this.current = this.full[chunks] as Buffer;
      this.full.length = chunks;
    }
    this.offset = mark - chunks * WRITER_CHUNK_BYTES;
  }

  push(...texts: string[]): void {
    for (const text of texts) this.write(text);
  }

  /** Writes `text`: directly when even at 3 bytes a UTF-16 unit it fits the current chunk, else encoded once and copied across chunks. */
  write(text: string): void {
    if (text.length * 3 <= WRITER_CHUNK_BYTES - this.offset) {
      this.offset += this.current.write(text, this.offset);
      return;
    }
    const bytes = Buffer.from(text, 'utf8');
    let from = 0;
    while (from < bytes.length) {
      const n = Math.min(WRITER_CHUNK_BYTES - this.offset, bytes.length - from);
      bytes.copy(this.current, this.offset, from, from + n);
      this.offset += n;
      from += n;
      if (this.offset === WRITER_CHUNK_BYTES) this.nextChunk();
    }
  }

  private nextChunk(): void {
    this.full.push(this.current);
    this.current = Buffer.allocUnsafe(WRITER_CHUNK_BYTES);
    this.offset = 0;
  }

  /** Whether a whole chunk is ready to drain. */
  get ready(): boolean {
    return this.full.length > 0;
  }

  *drain(final: boolean): Generator<Buffer> {
    const ready = this.full;
    this.full = [];
    yield* ready;
    if (final && this.offset > 0) {
      // Copied so that the last few bytes do not keep a whole chunk alive.
      yield Buffer.from(this.current.subarray(0, this.offset));
      this.offset = 0;
    }
  }
}

/**
 * Serialises a stream of document events as one XEP-0227 document.
 *
 * Event order rules: `host` before any `user`, `user` before its records. A `user` or
 * `host-end` closes an open user, a `host` closes an open host, and the end of the stream closes
 * everything, so the `*-end` events may be omitted. Throws {@link XmlCharError} for text XML
 * cannot carry and `Error` for records outside a user.
 */
export async function* writeDocument(events: AsyncIterable<DocumentEvent> | Iterable<DocumentEvent>, options: WriterOptions = {}): AsyncGenerator<Buffer> {
  const out = new ChunkBuffer();
  const state = new WriterState(out, options.onInvalidChars);
  out.push(XML_DECLARATION);
  out.push(`<server-data xmlns='${NS.pie}' xmlns:${XP}='${NS.xporta}'>\n`);
  for await (const event of events) {
    state.write(event);
    if (out.ready) yield* out.drain(false);
  }
  state.finish();
  out.push('</server-data>\n');
  yield* out.drain(true);
}

/** {@link writeDocument} as a byte stream, for `reply.send()` or `pipeline()`. */
export function documentStream(events: AsyncIterable<DocumentEvent> | Iterable<DocumentEvent>, options: WriterOptions = {}): Readable {
  return Readable.from(writeDocument(events, options), { objectMode: false, highWaterMark: WRITER_CHUNK_BYTES });
}

/** An event written with characters XML 1.0 cannot carry replaced by U+FFFD. */
export interface InvalidCharsReplaced {
  /** The event's kind, e.g. `roster` or `archive`. */
  readonly kind: DocumentEvent['kind'];
  /** The account being written, when inside one. */
  readonly user: string | undefined;
  /** What identifies the record where it has an id (archive id, PEP node and item). */
  readonly detail: string | undefined;
  /** The first character replaced. */
  readonly codePoint: number;
}

export interface WriterOptions {
  /**
   * Without it, stored text XML 1.0 cannot carry (a control character, a lone surrogate) fails
   * the document with {@link XmlCharError}. With it, the offending event is written with each
   * such character replaced by U+FFFD, and this hears of it: an export keeps going on stored data.
   */
  readonly onInvalidChars?: (replaced: InvalidCharsReplaced) => void;
}

// XML 1.0 Char production's complement (lone surrogates included: the `u` flag sees them as code points).
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** A deep copy of an event's data with every string's forbidden characters replaced. */
function replaceInvalidChars<T>(value: T): T {
  if (typeof value === 'string') return value.replace(NOT_XML_CHAR, '\uFFFD') as T;
  if (Array.isArray(value)) return value.map((v: unknown) => replaceInvalidChars(v)) as T;
  if (typeof value === 'object' && value !== null) {
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) copy[k] = replaceInvalidChars(v);
    return copy as T;
  }
  return value;
}

function eventDetail(event: DocumentEvent): string | undefined {
  switch (event.kind) {
    case 'archive':
      return `id ${event.id}`;
    case 'pep-item':
      return `node ${event.node}, item ${event.id}`;
    case 'pep-node':
      return `node ${event.node}`;
    default:
      return undefined;
  }
}

class WriterState {
  private hostOpen = false;
  /** The open host's domain: the `from` of the delay an offline message gets. */
  private host = '';
  private userOpen = false;
  private user: string | undefined;
  private container: Container | undefined;

  constructor(
    private readonly out: ChunkBuffer,
    private readonly onInvalidChars?: (replaced: InvalidCharsReplaced) => void,
  ) {}

  write(event: DocumentEvent): void {
    if (!this.onInvalidChars) {
      this.writeEvent(event);
      return;
    }
    // Plain locals, not a snapshot object: this runs once per archived message.
    const mark = this.out.mark;
    const { hostOpen, userOpen, user, container } = this;
    try {
      this.writeEvent(event);
    } catch (err) {
      if (!(err instanceof XmlCharError)) throw err;
      // Undo what the event wrote so far (nothing was drained in between), then write it again cleaned.
      this.out.rollback(mark);
      this.hostOpen = hostOpen;
      this.userOpen = userOpen;
      this.user = user;
      this.container = container;
      this.writeEvent(replaceInvalidChars(event));
      this.onInvalidChars({ kind: event.kind, user: this.user, detail: eventDetail(event), codePoint: err.codePoint });
    }
  }

  private writeEvent(event: DocumentEvent): void {
    switch (event.kind) {
      case 'host':
        this.closeHost();
        this.out.push(`<host jid='${escapeAttribute(event.jid)}'>\n`);
        this.hostOpen = true;
        this.host = event.jid;
        return;
      case 'host-end':
        this.closeHost();
        return;
      case 'user':
        if (!this.hostOpen) throw new Error('XEP-0227 writer: user event outside a host');
        this.closeUser();
        this.out.push(userStartTag(event));
        for (const scram of event.scram) this.out.push(scramElement(scram));
        this.userOpen = true;
        this.user = event.name;
        return;
      case 'user-end':
        this.closeUser();
        return;
      default:
        if (!this.userOpen) throw new Error(`XEP-0227 writer: ${event.kind} record outside a user`);
        this.record(event);
    }
  }

  finish(): void {
    this.closeHost();
  }

  private record(event: Exclude<DocumentEvent, { kind: 'host' | 'host-end' | 'user' | 'user-end' }>): void {
    switch (event.kind) {
      case 'private':
        this.enter({ kind: 'private' });
        this.out.push(serializeElement(event.element, NS.private));
        return;
      case 'pep-node':
        this.enter({ kind: 'pep-node' });
        this.out.push(pepNodeElements(event));
        return;
      case 'pep-item':
        this.enter({ kind: 'pep-item', node: event.node });
        this.out.push(pepItemElement(event));
        return;
      case 'archive':
        this.enter({ kind: 'archive' });
        // A stored stanza is copied in pieces, straight into the output (see writeVerbatim).
        this.out.write(archiveResultStart(event));
        if (!writeVerbatim(event.stanza, this.out)) this.out.write(serializeElement(event.stanza, NS.forward));
        this.out.write(ARCHIVE_RESULT_END_LINE);
        return;
      case 'offline':
        this.enter({ kind: 'offline' });
        this.out.write(offlineMessage(event, this.host));
        this.out.write('\n');
        return;
      case 'roster':
        this.leave();
        this.out.push(serializeElement(rosterElement(event), NS.pie), '\n');
        return;
      case 'pending-subscription':
        this.leave();
        this.out.push(serializeElement(pendingPresence(event), NS.pie), '\n');
        return;
      case 'vcard':
        this.leave();
        this.out.push(serializeElement(event.vcard, NS.pie), '\n');
        return;
      case 'blocklist':
        this.leave();
        this.out.push(serializeElement(blocklistElement(event), NS.pie), '\n');
        return;
      case 'privacy':
        this.leave();
        this.out.push(serializeElement(privacyElement(event), NS.pie), '\n');
        return;
      case 'opaque':
        this.leave();
        this.out.push(serializeElement(event.element, NS.pie), '\n');
        return;
    }
  }

  /** Opens the container for a record, reusing the open one when the record belongs there. */
  private enter(next: Container): void {
    const open = this.container;
    if (open?.kind === next.kind) {
      if (next.kind !== 'pep-item' || (open.kind === 'pep-item' && open.node === next.node)) return;
      // Another node's items go into the same <pubsub>, in their own <items>.
      this.out.push(`</items>\n<items node='${escapeAttribute(next.node)}'>`);
      this.container = next;
      return;
    }
    this.leave();
    switch (next.kind) {
      case 'private':
        this.out.push(`<query xmlns='${NS.private}'>`);
        break;
      case 'pep-node':
        this.out.push(`<pubsub xmlns='${NS.pubsubOwner}'>`);
        break;
      case 'pep-item':
        this.out.push(`<pubsub xmlns='${NS.pubsub}'><items node='${escapeAttribute(next.node)}'>`);
        break;
      case 'archive':
        this.out.push(`<archive xmlns='${NS.mamArchive}'>\n`);
        break;
      case 'offline':
        this.out.push('<offline-messages>\n');
        break;
    }
    this.container = next;
  }

  private leave(): void {
    if (!this.container) return;
    this.out.push(CLOSE_TAGS[this.container.kind], '\n');
    this.container = undefined;
  }

  private closeUser(): void {
    if (!this.userOpen) return;
    this.leave();
    this.out.push('</user>\n');
    this.userOpen = false;
  }

  private closeHost(): void {
    this.closeUser();
    if (!this.hostOpen) return;
    this.out.push('</host>\n');
    this.hostOpen = false;
  }
}
