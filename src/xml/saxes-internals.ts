/**
 * Every access xporta makes to saxes' private fields, in one place.
 *
 * Checked against saxes 6.0.0 exactly (package.json pins that version; node_modules/saxes/saxes.js).
 * The contract relied on, all of it undocumented in saxes:
 * - handlers live in the fields `xmldeclHandler`, `textHandler`, `piHandler`, `doctypeHandler`,
 *   `commentHandler`, `openTagStartHandler`, `attributeHandler`, `openTagHandler`,
 *   `closeTagHandler`, `cdataHandler`, `errorHandler`, `endHandler` and `readyHandler`, which
 *   `on()` writes through its EVENT_NAME_TO_HANDLER_NAME table;
 * - `state` holds the tokenizer state, and the value 13 (`S_TEXT`) means content between markup;
 * - `carriedFromPrevious` is undefined unless the last `write()` ended in a CR or high surrogate
 *   it keeps for the next one;
 * - `position` is `chunkPosition + i`; `line` (from 1) and `column` (characters read on the line,
 *   0 at its start) are plain counters, and `columnIndex` is `position - positionAtNewLine`; the
 *   parser only adds to these, so moving them forward over text it did not read is consistent.
 * Upgrading saxes means re-checking each point against its source and the tests in
 * test/xep0227/xml.test.ts and test/xep0227/reader.test.ts.
 */
import type { EventName, EventNameToHandler, SaxesParser } from 'saxes';
import type { TextMeasure } from './chars.js';

/** The parser configuration used everywhere: namespaces resolved, positions tracked. */
export type NsParser = SaxesParser<{ xmlns: true; position: true }>;

/** Handlers for a {@link NsParser}, by saxes event name. */
export type SaxesHandlers = { readonly [N in EventName]?: EventNameToHandler<{ xmlns: true; position: true }, N> };

/** saxes' private handler slots. */
interface SaxesHandlerSlots {
  xmldeclHandler?: unknown;
  textHandler?: unknown;
  piHandler?: unknown;
  doctypeHandler?: unknown;
  commentHandler?: unknown;
  openTagStartHandler?: unknown;
  attributeHandler?: unknown;
  openTagHandler?: unknown;
  closeTagHandler?: unknown;
  cdataHandler?: unknown;
  errorHandler?: unknown;
  endHandler?: unknown;
  readyHandler?: unknown;
}

/**
 * Installs all handlers at once. saxes' own `on()` stores each one under a computed key, and after
 * six such stores V8 turns the parser into a dictionary-mode object: every field read in its
 * per-character loop then costs a hash lookup. Stores under literal names keep the parser's fast
 * layout, so every parser must get its handlers here, never through `on()`.
 */
export function listen(parser: NsParser, handlers: SaxesHandlers): void {
  const slots = parser as unknown as SaxesHandlerSlots;
  slots.xmldeclHandler = handlers.xmldecl;
  slots.textHandler = handlers.text;
  slots.piHandler = handlers.processinginstruction;
  slots.doctypeHandler = handlers.doctype;
  slots.commentHandler = handlers.comment;
  slots.openTagStartHandler = handlers.opentagstart;
  slots.attributeHandler = handlers.attribute;
  slots.openTagHandler = handlers.opentag;
  slots.closeTagHandler = handlers.closetag;
  slots.cdataHandler = handlers.cdata;
  slots.errorHandler = handlers.error;
  slots.endHandler = handlers.end;
  slots.readyHandler = handlers.ready;
}

/** saxes' private position counters and state. */
interface SaxesInternals {
  state: number;
  line: number;
  column: number;
  chunkPosition: number;
  positionAtNewLine: number;
  carriedFromPrevious: string | undefined;
}

/** saxes' S_TEXT state: in content, between markup. */
const SAXES_S_TEXT = 13;

/** Whether the parser stands in content between markup, with nothing held over from the last write. */
export function betweenMarkup(parser: NsParser): boolean {
  const internals = parser as unknown as SaxesInternals;
  return internals.state === SAXES_S_TEXT && internals.carriedFromPrevious === undefined;
}

/**
 * Moves the parser's position past `length` characters the caller has handled without it (and
 * measured), as if it had read them: its line and column stay those of the document. They must
 * hold complete markup, so that the parser stays {@link betweenMarkup}.
 */
export function skipOver(parser: NsParser, length: number, measured: Pick<TextMeasure, 'lineBreaks' | 'lastLineColumns'>): void {
  const internals = parser as unknown as SaxesInternals;
  if (measured.lineBreaks > 0) {
    internals.line += measured.lineBreaks;
    internals.column = measured.lastLineColumns;
    // Not exact with surrogate pairs on the last line; saxes only uses it for `columnIndex`.
    internals.positionAtNewLine = internals.chunkPosition + length - measured.lastLineColumns;
  } else {
    internals.column += measured.lastLineColumns;
  }
  internals.chunkPosition += length;
}

