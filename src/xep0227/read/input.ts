/**
 * Byte input of one document: slicing, UTF-8 decoding, byte and size accounting, and feeding
 * saxes, with the hand-written fast path for archive items.
 *
 * saxes is fed one slice of at most {@link SLICE} characters at a time; the events it produces go
 * into a small queue, and the next slice is parsed only when the consumer has taken them all.
 * Memory is thus bounded by one slice plus one record's element tree (itself bounded by
 * `maxElementBytes`), no matter how large the archive inside is.
 *
 * Archive items of the usual shape are taken straight from the text (archive-item.ts) instead of
 * through saxes, whose position is then moved past them (saxes-internals.ts). What an element
 * means is the subclass's business (structure.ts): this class calls its hooks.
 */
import type { SaxesTagNS } from 'saxes';
import { SaxesParser } from 'saxes';
import { hasOnlyXmlChars, hasOnlyXmlCharsIfWellFormed, measureText, skipXmlSpace, type TextMeasure } from '../../xml/chars.js';
import type { ElementBuilder } from '../../xml/parse.js';
import { betweenMarkup, listen, skipOver } from '../../xml/saxes-internals.js';
import { Xep0227Error, type Xep0227ErrorCode } from '../errors.js';
import { readArchiveItem } from './archive-item.js';
import { toArchiveFromParts } from './records.js';
import { SLICE, type DocumentContext, type QueueItem, type Shared } from './shared.js';

/** Fewest characters an element takes in a document (`<a/>`). */
const MIN_ELEMENT_CHARS = 4;
/** Outcomes of offering an archive item to the fast path, besides the index where it ended. */
const NOT_TAKEN = -1;
const HOLD = -2;
const RESULT_TAG = '<result';

export abstract class DocumentInput {
  protected readonly sax = new SaxesParser({ xmlns: true, position: true });
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  protected queue: QueueItem[] = [];
  failure: Xep0227Error | undefined;

  /** Builds the record subtree being captured; undefined between records. */
  protected builder: ElementBuilder | undefined;
  /** Line and column of each element opened in the current capture, in document order. */
  protected positions: number[] = [];
  /** Line and column of the start tag last opened. */
  protected tagLine = 1;
  protected tagColumn = 1;
  private started = false;
  /** The chunk being parsed, and where its next slice starts. */
  private fed: Uint8Array | string = '';
  private fedAt = 0;
  /**
   * Whether the text has all been decoded from bytes, so that it has no lone surrogate: the
   * decoder refuses encoded surrogates and never ends a piece inside a pair. False once a string is fed.
   */
  private decodedOnly = true;

  // Byte accounting: `chunk` is the text saxes is working on, `chunkStart` its stream position.
  private chunk = '';
  private chunkStart = 0;
  /** Code units written to saxes so far (its `position` is only meaningful inside events). */
  private written = 0;
  /**
   * Whether every character of `chunk` is one XML can carry and `]]>` is not in it, so that the
   * archive items in it need no such check of their own; undefined until an item asks.
   */
  private chunkClean: boolean | undefined;
  /** Whether `chunk` has a CR, whose line breaks only measureText counts as a parser does; known with `chunkClean`. */
  private chunkHasCr = false;
  /** Index of the next LF in `chunk` from where line breaks were last counted (the length if none); -1 when not searched yet. */
  private nextLf = -1;
  /**
   * Characters of `chunk` that archive items taken one after another span, from the white space
   * before the first: saxes' position is moved past them at once, before it reads on.
   */
  private skipFrom = 0;
  private skipTo = 0;
  /** Index in `chunk` from which bytes count towards the current element. */
  private markOffset = 0;
  /** Bytes counted towards the current element before `chunk`. */
  private markedBytes = 0;
  /** A trailing CR or high surrogate held back so that positions map onto `chunk` exactly. */
  private carry = '';
  /** Bytes of an incomplete UTF-8 sequence the decoder holds, for locating encoding errors. */
  private held: Uint8Array = new Uint8Array(0);
  /** The start of an archive item that the end of the last slice cut off, for the fast path. */
  private heldItem = '';
  /** Set once the source has ended: nothing is held back any more. */
  private ending = false;

  constructor(
    readonly shared: Shared,
    readonly ctx: DocumentContext,
  ) {
    const sax = this.sax;
    listen(sax, {
      doctype: (doctype) => this.onDoctype(doctype),
      xmldecl: (decl) => {
        // XML 1.1 admits control characters (as &#x1; and raw C1) that no XMPP server can carry:
        // the streams are XML 1.0, and Prosody refuses to send them. Refused before any content.
        if (decl.version !== undefined && decl.version !== '1.0') {
          this.fail('unsupported-version', `only XML 1.0 documents are supported, not version ${decl.version}`, sax.line, 1);
        }
        const encoding = decl.encoding;
        if (encoding !== undefined && !/^(utf-?8|us-ascii|ascii)$/i.test(encoding)) {
          this.fail('malformed', `only UTF-8 documents are supported, not ${encoding}`, sax.line, 1);
        }
      },
      error: (err) => {
        const message = err.message.replace(/^(?:[^:]*:)?\d+:\d+: /, '');
        if (/entity/.test(message)) this.fail('entity', message, sax.line, this.entityColumn());
        // saxes counts the characters read on the line: the column of the offending one, 0 at a line's start.
        this.fail('malformed', message, sax.line, Math.max(1, sax.column));
      },
      opentagstart: (tag) => {
        this.tagLine = sax.line;
        this.tagColumn = Math.max(1, sax.column - [...tag.name].length - 1);
      },
      opentag: (tag) => this.onOpen(tag),
      closetag: () => this.onClose(),
      text: (text) => this.onText(text),
      cdata: (text) => this.onText(text),
      comment: () => this.mark(),
      processinginstruction: () => this.mark(),
    });
  }

  /** Takes the events produced so far. */
  take(): QueueItem[] {
    const items = this.queue;
    this.queue = [];
    return items;
  }

  /** Gives the parser the next chunk of the source, which {@link parseSlice} then parses slice by slice. */
  feed(chunk: Uint8Array | string): void {
    this.fed = chunk;
    this.fedAt = 0;
  }

  /**
   * Parses the next slice of the chunk fed, queueing its events; false when the chunk is all
   * parsed (or parsing has failed). Parsing a chunk one slice at a time, with the events taken in
   * between, keeps the events and the text they refer to within one slice, whatever the size of
   * the source's chunks.
   */
  parseSlice(): boolean {
    const chunk = this.fed;
    const i = this.fedAt;
    if (this.failure || i >= chunk.length) return false;
    this.fedAt = i + SLICE;
    try {
      if (typeof chunk === 'string') {
        this.decodedOnly = false;
        const piece = chunk.slice(i, i + SLICE);
        this.count(Buffer.byteLength(piece, 'utf8'));
        this.feedText(!this.started && i === 0 && piece.startsWith('\uFEFF') ? piece.slice(1) : piece);
      } else {
        const piece = chunk.subarray(i, i + SLICE);
        this.count(piece.length);
        this.feedText(this.decode(piece));
      }
    } catch (err) {
      this.failure = keepXep0227Error(err);
    }
    if (this.fedAt >= chunk.length) this.fed = '';
    return true;
  }

  end(): void {
    if (this.failure) return;
    this.ending = true;
    try {
      this.feedText(this.decode(undefined));
      if (this.carry !== '') {
        const carried = this.carry;
        this.carry = '';
        this.writeToSax(carried);
      }
      if (this.heldItem !== '') this.writeToSax('');
      this.sax.close();
    } catch (err) {
      this.failure = keepXep0227Error(err);
    }
  }

  /** Decodes the next bytes, or flushes the decoder when `bytes` is undefined. */
  private decode(bytes: Uint8Array | undefined): string {
    try {
      const text = bytes === undefined ? this.decoder.decode() : this.decoder.decode(bytes, { stream: true });
      // An incomplete sequence is at most 3 bytes long, so the last 3 bytes tell.
      this.held =
        bytes === undefined ? new Uint8Array(0) : incompleteTail(bytes.length >= 3 ? bytes.subarray(bytes.length - 3) : concat(this.held, bytes));
      return text;
    } catch {
      // Parse up to the offending byte so that the error points at it: nothing follows, so an
      // archive item the valid text cuts off goes to saxes rather than waiting for the rest.
      this.ending = true;
      const all = concat(this.held, bytes ?? new Uint8Array(0));
      this.feedText(new TextDecoder().decode(all.subarray(0, firstInvalidUtf8(all))));
      const carried = this.carry;
      this.carry = '';
      if (carried !== '') this.writeToSax(carried);
      return this.fail('malformed', 'the document is not valid UTF-8', this.sax.line, this.sax.column + 1);
    }
  }

  /** Column of the `&` that starts the entity reference saxes just refused. */
  private entityColumn(): number {
    const end = this.sax.position - this.chunkStart;
    const amp = this.chunk.lastIndexOf('&', end - 1);
    if (amp === -1 || end > this.chunk.length) return this.sax.column;
    return Math.max(1, this.sax.column - [...this.chunk.slice(amp, end)].length + 1);
  }

  private count(bytes: number): void {
    this.shared.documentBytes += bytes;
    if (this.shared.documentBytes > this.shared.maxDocumentBytes) {
      this.fail(
        'document-too-large',
        `the document is larger than ${this.shared.maxDocumentBytes} bytes`,
        this.sax.line,
        this.sax.column + 1,
      );
    }
  }

  private feedText(text: string): void {
    let s = this.carry + text;
    this.carry = '';
    const last = s.charCodeAt(s.length - 1);
    // saxes would carry these over itself, which would shift its positions against `chunk`.
    if (last === 0x0d || (last >= 0xd800 && last <= 0xdbff)) {
      this.carry = s.slice(-1);
      s = s.slice(0, -1);
    }
    if (s !== '') this.writeToSax(s);
  }

  private writeToSax(text: string): void {
    if (this.heldItem !== '' && this.shared.fastArchive) {
      // The item held back from the last slice is joined with the text that ends it alone, not
      // with the whole slice: that join is a copy of everything joined.
      const close = text.indexOf('</result');
      const cut = close < 0 ? -1 : text.indexOf('>', close) + 1;
      if (cut > 0 && cut < text.length) {
        this.writeToSax(text.slice(0, cut));
        this.writeToSax(text.slice(cut));
        return;
      }
    }
    this.started = true;
    const s = this.heldItem === '' ? text : this.heldItem + text;
    this.heldItem = '';
    this.chunk = s;
    this.chunkStart = this.written;
    this.chunkClean = undefined;
    this.nextLf = -1;
    this.skipFrom = this.skipTo = 0;
    let consumed = s.length;
    if (this.shared.fastArchive) consumed = this.writeTakingArchiveItems(s);
    else this.sax.write(s);
    this.written += consumed;
    this.markedBytes += this.bytesOf(this.markOffset, consumed);
    this.markOffset = 0;
    this.chunk = '';
    if (consumed < s.length) this.heldItem = s.slice(consumed);
    if (this.markedBytes > this.shared.maxElementBytes) this.tooLarge();
  }

  /**
   * Writes `s` to saxes, but for the archive items the fast path takes (archive-item.ts), with the
   * whitespace before them; saxes' position is moved past those. Returns how much of `s` was
   * consumed: an item that `s` cuts off waits for the next slice.
   */
  private writeTakingArchiveItems(s: string): number {
    let pos = 0;
    for (;;) {
      const lt = s.indexOf(RESULT_TAG, pos);
      if (lt < 0) break;
      if (skipXmlSpace(s, pos) !== lt) {
        this.writeAfterSkipped(s.slice(pos, lt));
        pos = lt;
      }
      const end = this.atArchiveItem() ? this.takeArchiveItem(s, pos, lt) : NOT_TAKEN;
      if (end === HOLD) {
        this.moveSaxPastSkipped();
        return pos;
      }
      if (end === NOT_TAKEN) {
        this.writeAfterSkipped(s.slice(pos, lt + RESULT_TAG.length));
        pos = lt + RESULT_TAG.length;
      } else {
        pos = end;
      }
    }
    if (pos < s.length) this.writeAfterSkipped(pos === 0 ? s : s.slice(pos));
    this.moveSaxPastSkipped();
    return s.length;
  }

  private writeAfterSkipped(text: string): void {
    this.moveSaxPastSkipped();
    this.sax.write(text);
  }

  /** Moves saxes' position past the items taken since it last read, as if it had read them. */
  private moveSaxPastSkipped(): void {
    if (this.skipTo === this.skipFrom) return;
    skipOver(this.sax, this.skipTo - this.skipFrom, this.measureLines(this.skipFrom, this.skipTo));
    this.skipFrom = this.skipTo;
  }

  /**
   * Line breaks in `chunk[from, to)` and the characters after the last one, as measureText counts
   * them. Without CR in the chunk that is counting LFs, with a search that only moves forward
   * through the chunk, and the characters of the last line.
   */
  private measureLines(from: number, to: number): Pick<TextMeasure, 'lineBreaks' | 'lastLineColumns'> {
    const s = this.chunk;
    if (this.chunkHasCr) return measureText(s, from, to);
    let lineBreaks = 0;
    let lineStart = from;
    let lf = this.nextLf >= from ? this.nextLf : s.indexOf('\n', from);
    while (lf >= 0 && lf < to) {
      lineBreaks++;
      lineStart = lf + 1;
      lf = s.indexOf('\n', lineStart);
    }
    this.nextLf = lf < 0 ? s.length : lf;
    // A surrogate pair is one character; the chunk has no lone surrogate, and no pair is cut at `to` (a `>`).
    let columns = to - lineStart;
    for (let k = lineStart; k < to; k++) {
      const c = s.charCodeAt(k);
      if (c >= 0xd800 && c <= 0xdbff) {
        columns--;
        k++;
      }
    }
    return { lineBreaks, lastLineColumns: columns };
  }

  /** Whether the characters of the item `chunk[from, to)` need no check of their own (see {@link chunkClean}). */
  private cleanItem(from: number, to: number): boolean {
    if (this.chunkClean === undefined) {
      const s = this.chunk;
      this.chunkClean = (this.decodedOnly ? hasOnlyXmlCharsIfWellFormed(s) : hasOnlyXmlChars(s)) && !s.includes(']]>');
      this.chunkHasCr = s.includes('\r');
    }
    if (this.chunkClean) return true;
    const item = this.chunk.slice(from, to);
    return hasOnlyXmlChars(item) && !item.includes(']]>');
  }

  /** Whether saxes stands between the children of an `<archive>`, where an item may start. */
  private atArchiveItem(): boolean {
    return this.builder === undefined && this.inArchive() && betweenMarkup(this.sax);
  }

  /**
   * Takes the archive item at `lt` (whitespace from `from`) if the fast path can: returns where it
   * ends, {@link HOLD} when `s` ends inside it, or {@link NOT_TAKEN} for saxes to parse it. The
   * checks the parser would make (depth, size, the record's own) are made here too; an item that
   * fails one goes to saxes, which reports it with its position.
   */
  private takeArchiveItem(s: string, from: number, lt: number): number {
    const close = s.indexOf('</result', lt + RESULT_TAG.length);
    const gt = close < 0 ? -1 : s.indexOf('>', close);
    if (gt < 0) return this.ending || s.length - from > SLICE ? NOT_TAKEN : HOLD;
    const end = gt + 1;
    if (!this.cleanItem(from, end)) return NOT_TAKEN;
    // A margin for the few bytes around the item that the parser counts with it. A UTF-16 code
    // unit takes at most 3 bytes in UTF-8, so most items need no count.
    const maxBytes = this.shared.maxElementBytes - 2;
    if ((end - from) * 3 > maxBytes && Buffer.byteLength(s.slice(from, end), 'utf8') > maxBytes) return NOT_TAKEN;
    // Long enough to hold more elements than allowed: saxes counts them and names the position.
    if (end - lt > MIN_ELEMENT_CHARS * this.shared.maxElementNodes) return NOT_TAKEN;
    const parts = readArchiveItem(s, lt, end);
    if (!parts) return NOT_TAKEN;
    if (this.openDepth() + parts.depth > this.shared.maxDepth) return NOT_TAKEN;
    const record = toArchiveFromParts(parts.resultAttrs, parts.delayAttrs, parts.stanza, this.archiveOwner());
    if (!record) return NOT_TAKEN;
    this.queue.push(record);
    if (this.skipTo !== from) {
      this.moveSaxPastSkipped();
      this.skipFrom = from;
    }
    this.skipTo = end;
    this.markOffset = end;
    this.markedBytes = 0;
    return end;
  }

  private bytesOf(from: number, to: number): number {
    return to <= from ? 0 : Buffer.byteLength(this.chunk.slice(from, to), 'utf8');
  }

  /** Starts counting element bytes afresh at the parser's position. */
  protected mark(): void {
    if (this.builder) return;
    this.markOffset = Math.max(0, this.sax.position - this.chunkStart);
    this.markedBytes = 0;
  }

  private tooLarge(): never {
    const [line, column] = this.builder ? [this.positions[0] ?? this.sax.line, this.positions[1] ?? 1] : [this.sax.line, this.sax.column];
    this.fail('element-too-large', `an element is larger than ${this.shared.maxElementBytes} bytes`, line, column);
  }

  fail(code: Xep0227ErrorCode, message: string, line: number, column: number): never {
    throw new Xep0227Error(code, message, line, column, this.ctx.source);
  }

  private onDoctype(doctype: string): never {
    // Reported where `<!DOCTYPE` starts: the event comes at its closing `>`.
    const lines = doctype.split('\n');
    const line = this.sax.line - (lines.length - 1);
    const column =
      lines.length === 1 ? Math.max(1, this.sax.column - [...doctype].length - '<!DOCTYPE>'.length + 1) : 1;
    this.fail('doctype', 'DOCTYPE declarations are not allowed', line, column);
  }

  private onText(text: string): void {
    if (this.builder) this.builder.text(text);
    else this.mark();
  }

  /** An element has opened: the document structure decides what it is. */
  protected abstract onOpen(tag: SaxesTagNS): void;

  /** The innermost open element has closed. */
  protected abstract onClose(): void;

  /** Whether the innermost open element is an `<archive>` whose items are read one by one. */
  protected abstract inArchive(): boolean;

  /** Depth of the innermost open element, counted as in the main document (`<server-data>` is 1). */
  protected abstract openDepth(): number;

  /** Bare JID of the user whose archive is being read, for deriving an item's `with`. */
  protected abstract archiveOwner(): string;

  /** Bytes of the document since the last {@link mark}: the size of the record subtree just closed. */
  protected bytesSinceMark(): number {
    return this.markedBytes + this.bytesOf(this.markOffset, this.sax.position - this.chunkStart);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The last bytes of `bytes` that start a UTF-8 sequence without completing it. */
function incompleteTail(bytes: Uint8Array): Uint8Array {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back] as number;
    if (b < 0x80) return new Uint8Array(0);
    if (b >= 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return need > back ? bytes.slice(bytes.length - back) : new Uint8Array(0);
    }
  }
  return new Uint8Array(0);
}

/** Index of the first byte that is not part of well-formed UTF-8 (RFC 3629), or the length. */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i] as number;
    if (c < 0x80) {
      i++;
      continue;
    }
    const n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    if (n === 0 || i + n >= b.length) return i;
    const second = b[i + 1] as number;
    const [lo, hi] = c === 0xe0 ? [0xa0, 0xbf] : c === 0xed ? [0x80, 0x9f] : c === 0xf0 ? [0x90, 0xbf] : c === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    if (second < lo || second > hi) return i;
    for (let k = 2; k <= n; k++) {
      const next = b[i + k] as number;
      if (next < 0x80 || next > 0xbf) return i;
    }
    i += n + 1;
  }
  return b.length;
}

/** Errors of the document are kept for after the queued events; anything else is a bug and propagates. */
function keepXep0227Error(err: unknown): Xep0227Error {
  if (err instanceof Xep0227Error) return err;
  throw err;
}
