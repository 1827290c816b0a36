/**
 * The element tree codec shared by the XEP-0227 writer/reader and the storage backends:
 * serialise an {@link XmlElement} with correct namespace declarations and escaping, and parse a
 * stand-alone XML fragment (a stored stanza, a PEP payload) into one, refusing DTDs.
 */
import { SaxesParser, type EventName, type EventNameToHandler, type SaxesAttributeNS, type SaxesTagNS } from 'saxes';
import { hasOnlyXmlChars, type TextMeasure } from './chars.js';
import { NS, type XmlElement, type XmlNode } from '../records/model.js';
import { scanVerbatim } from '../xep0227/verbatim.js';

/** A character XML 1.0 cannot carry, not even as a character reference. */
export class XmlCharError extends Error {
  constructor(readonly codePoint: number) {
    super(`U+${codePoint.toString(16).toUpperCase().padStart(4, '0')} cannot be represented in XML 1.0`);
    this.name = 'XmlCharError';
  }
}

/** A fragment that is not well-formed or uses a forbidden construct. */
export class XmlFragmentError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(`${message} (line ${line}, column ${column})`);
    this.name = 'XmlFragmentError';
  }
}

// XML 1.0 Char production: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
// Lone surrogates are caught because a `u`-flag regex sees them as single code points.
const FORBIDDEN_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

function assertXmlChars(value: string): void {
  // Every exported string passes here, so the common case (nothing wrong) takes the fast test.
  if (hasOnlyXmlChars(value)) return;
  const match = FORBIDDEN_CHAR.exec(value);
  if (match) throw new XmlCharError(match[0].codePointAt(0) ?? 0);
}

/**
 * Text content: `&`, `<` and `>` escaped (the last keeps `]]>` out), and CR as a reference because
 * a parser would turn a raw one into LF.
 */
export function escapeText(value: string): string {
  assertXmlChars(value);
  return TEXT_SPECIAL.test(value) ? value.replace(TEXT_SPECIALS, (c) => TEXT_ESCAPES[c] ?? c) : value;
}

/** Attribute values in single quotes; TAB, LF and CR as references so they survive normalisation. */
export function escapeAttribute(value: string): string {
  assertXmlChars(value);
  return ATTR_SPECIAL.test(value) ? value.replace(ATTR_SPECIALS, (c) => ATTR_ESCAPES[c] ?? c) : value;
}

const TEXT_SPECIAL = /[&<>\r]/;
const TEXT_SPECIALS = /[&<>\r]/g;
const ATTR_SPECIAL = /[&<>'"\t\n\r]/;
const ATTR_SPECIALS = /[&<>'"\t\n\r]/g;

const TEXT_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#13;' };
const ATTR_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  "'": '&apos;',
  '"': '&quot;',
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};

/** Splits a Clark-notation attribute key `{uri}local`; undefined for plain and `xml:` keys. */
export function splitClark(key: string): { uri: string; local: string } | undefined {
  if (!key.startsWith('{')) return undefined;
  const end = key.indexOf('}');
  return { uri: key.slice(1, end), local: key.slice(end + 1) };
}

/**
 * Serialises an element. `parentNs` is the default namespace in scope where it is written:
 * an `xmlns` declaration is emitted only when the element's namespace differs from it.
 */
export function serializeElement(el: XmlElement, parentNs = ''): string {
  const parts: string[] = [];
  writeElement(el, parentNs, parts);
  return parts.join('');
}

function writeElement(el: XmlElement, parentNs: string, out: string[]): void {
  const verbatim = verbatimText(el);
  if (verbatim !== undefined) {
    out.push(verbatim);
    return;
  }
  out.push('<', el.name);
  if (el.xmlns !== parentNs) out.push(" xmlns='", escapeAttribute(el.xmlns), "'");
  let prefixCount = 0;
  for (const [key, value] of Object.entries(el.attrs)) {
    const clark = splitClark(key);
    if (clark) {
      // Each foreign attribute gets its own prefix, declared on the element that uses it.
      const prefix = `ns${++prefixCount}`;
      out.push(` xmlns:${prefix}='`, escapeAttribute(clark.uri), `' ${prefix}:${clark.local}='`, escapeAttribute(value), "'");
    } else {
      out.push(' ', key, "='", escapeAttribute(value), "'");
    }
  }
  if (el.children.length === 0) {
    out.push('/>');
    return;
  }
  out.push('>');
  for (const child of el.children) {
    if (typeof child === 'string') out.push(escapeText(child));
    else writeElement(child, el.xmlns, out);
  }
  out.push('</', el.name, '>');
}

/** What a stored element keeps: its text, and its parsed tree once attributes or children are read. */
interface StoredState {
  readonly xml: string;
  readonly defaultNs: string;
  /** The text with the root's namespace declared (`xml` itself when it does), which serialisation copies. */
  readonly verbatim: string;
  tree: XmlElement | undefined;
}

/**
 * An element kept as its text. Its attributes and children are own enumerable accessors, so a
 * copy made with spread syntax (a changed element) or a deep comparison reads them as for any
 * element; the text is a private field, which neither sees. A class rather than
 * `Object.defineProperties` on a literal: that took about 0.7 µs an element against 0.25 µs,
 * paid for every archived message exported.
 */
class StoredXmlElement {
  readonly name: string;
  readonly xmlns: string;
  declare readonly attrs: Readonly<Record<string, string>>;
  declare readonly children: readonly XmlNode[];
  readonly #state: StoredState;

  // One pair of accessor functions for all stored elements: getters of each element's own would
  // make every element a dictionary-mode object of about 700 bytes.
  static readonly #lazyAttrs: PropertyDescriptor = {
    enumerable: true,
    get(this: StoredXmlElement) {
      return StoredXmlElement.#tree(this).attrs;
    },
  };

  static readonly #lazyChildren: PropertyDescriptor = {
    enumerable: true,
    get(this: StoredXmlElement) {
      return StoredXmlElement.#tree(this).children;
    },
  };

  /** `attrs` when the caller has read them with the start tag; otherwise they wait, as the children do. */
  constructor(name: string, xmlns: string, state: StoredState, attrs?: Record<string, string>) {
    this.name = name;
    this.xmlns = xmlns;
    if (attrs) this.attrs = attrs;
    else Object.defineProperty(this, 'attrs', StoredXmlElement.#lazyAttrs);
    Object.defineProperty(this, 'children', StoredXmlElement.#lazyChildren);
    this.#state = state;
  }

  static #tree(el: StoredXmlElement): XmlElement {
    const state = el.#state;
    return (state.tree ??= parseElement(state.xml, state.defaultNs));
  }

  static stateOf(el: XmlElement): StoredState | undefined {
    return #state in el ? (el as StoredXmlElement).#state : undefined;
  }
}

function storedState(el: XmlElement): StoredState | undefined {
  return StoredXmlElement.stateOf(el);
}

function verbatimText(el: XmlElement): string | undefined {
  return storedState(el)?.verbatim;
}

/**
 * The text of a stored element (see {@link storedElement}) whose root does not declare its
 * namespace but takes `defaultNs`, as written where that is the namespace in scope; undefined for
 * any other element. Lets a storage format that omits `xmlns='jabber:client'` copy the text.
 */
export function storedText(el: XmlElement, defaultNs: string): string | undefined {
  const state = storedState(el);
  // `verbatim` is `xml` exactly when the root declares its namespace itself.
  return state && state.verbatim !== state.xml && state.defaultNs === defaultNs ? state.xml : undefined;
}

/**
 * Whether an element's text may contain `needle`: false only for a stored element whose text
 * does not, which lets a caller skip reading (and so parsing) its children.
 */
export function mayContainText(el: XmlElement, needle: string): boolean {
  const state = storedState(el);
  return state === undefined || state.xml.includes(needle);
}

/**
 * An element stored as text (an archived message, a PEP payload): like {@link parseElement}, but
 * when the text is in the verbatim subset (see verbatim.ts) it is parsed only if its attributes or
 * children are read, and serialised by copying it.
 */
export function storedElement(xml: string, defaultNs = ''): XmlElement {
  const scanned = scanVerbatim(xml, defaultNs);
  if (!scanned) return parseElement(xml, defaultNs);
  return new StoredXmlElement(scanned.name, scanned.xmlns, storedStateOf(scanned.name, xml, defaultNs, scanned.declaresNamespace));
}

/**
 * A stored element whose text the caller has already found to be in the verbatim subset, with a
 * root named `name` that does not declare its namespace (it takes `defaultNs`) and whose
 * attributes, as parsing gives them, are `attrs`. Its children are parsed only when read.
 */
export function scannedElement(xml: string, defaultNs: string, name: string, attrs: Record<string, string>): XmlElement {
  return new StoredXmlElement(name, defaultNs, storedStateOf(name, xml, defaultNs, false), attrs);
}

/** The text a stored element is serialised from, and parsed from when read. */
function storedStateOf(name: string, xml: string, defaultNs: string, declaresNamespace: boolean): StoredState {
  // Declared even when empty: under a parent with a default namespace the root would inherit it.
  const verbatim = declaresNamespace ? xml : `<${name}${namespaceDeclaration(defaultNs)}${xml.slice(1 + name.length)}`;
  return { xml, defaultNs, verbatim, tree: undefined };
}

/** ` xmlns='…'` for each default namespace met (a handful: `jabber:client`, a PEP payload's). */
const declarations = new Map<string, string>();

function namespaceDeclaration(uri: string): string {
  let declaration = declarations.get(uri);
  if (declaration === undefined) {
    declaration = ` xmlns='${escapeAttribute(uri)}'`;
    if (declarations.size < 64) declarations.set(uri, declaration);
  }
  return declaration;
}

/** Maps a saxes attribute to the model's key convention; undefined for namespace declarations. */
export function attributeKey(attr: { prefix: string; local: string; uri: string; name: string }): string | undefined {
  if (attr.name === 'xmlns' || attr.prefix === 'xmlns') return undefined;
  if (attr.uri === '') return attr.local;
  if (attr.uri === NS.xml) return `xml:${attr.local}`;
  return `{${attr.uri}}${attr.local}`;
}

/** Builds immutable elements from saxes open/text/close events. */
export class ElementBuilder {
  private readonly stack: { name: string; xmlns: string; attrs: Record<string, string>; children: XmlNode[] }[] = [];

  get depth(): number {
    return this.stack.length;
  }

  open(tag: SaxesTagNS): void {
    const attrs: Record<string, string> = {};
    const attributes = tag.attributes;
    for (const qname in attributes) {
      const attr = attributes[qname] as SaxesAttributeNS;
      // The common case first: an unprefixed attribute is in no namespace, its key is its name.
      if (attr.prefix === '') {
        if (qname !== 'xmlns') attrs[qname] = attr.value;
        continue;
      }
      const key = attributeKey(attr);
      if (key !== undefined) attrs[key] = attr.value;
    }
    this.stack.push({ name: tag.local, xmlns: tag.uri, attrs, children: [] });
  }

  text(value: string): void {
    const top = this.stack[this.stack.length - 1];
    if (!top) return;
    const last = top.children[top.children.length - 1];
    // Adjacent text and CDATA runs are one text node, so equal documents give equal trees.
    if (typeof last === 'string') top.children[top.children.length - 1] = last + value;
    else top.children.push(value);
  }

  /** Closes the innermost element; returns it when it was the outermost one. */
  close(): XmlElement | undefined {
    const done = this.stack.pop();
    if (!done) return undefined;
    const el: XmlElement = { name: done.name, xmlns: done.xmlns, attrs: done.attrs, children: done.children };
    const parent = this.stack[this.stack.length - 1];
    if (parent) {
      parent.children.push(el);
      return undefined;
    }
    return el;
  }
}

/** The parser configuration used everywhere: namespaces resolved, positions tracked. */
export type NsParser = SaxesParser<{ xmlns: true; position: true }>;

/** Handlers for a {@link NsParser}, by saxes event name. */
export type SaxesHandlers = { readonly [N in EventName]?: EventNameToHandler<{ xmlns: true; position: true }, N> };

/** saxes' private handler slots (saxes 6). */
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
 * per-character loop then costs a hash lookup (measured: a 100k-message document took 6.0 s instead
 * of 1.9 s). Stores under literal names keep the parser's fast layout.
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

/** saxes' private position counters and state (saxes 6). */
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
export function skipOver(parser: NsParser, length: number, measured: TextMeasure): void {
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

/** Per-parse state that the reusable parser's handlers write into. */
interface FragmentParse {
  builder: ElementBuilder;
  root: XmlElement | undefined;
  failure: XmlFragmentError | undefined;
}

/**
 * One saxes parser per default namespace, reused: building a parser per stored stanza dominated
 * export time. saxes resets itself on close(); after a failure the parser is dropped instead.
 */
const fragmentParsers = new Map<string, { parser: NsParser; state: FragmentParse }>();

function fragmentParser(defaultNs: string): { parser: NsParser; state: FragmentParse } {
  const cached = fragmentParsers.get(defaultNs);
  if (cached) return cached;
  const parser = new SaxesParser({
    xmlns: true,
    position: true,
    ...(defaultNs ? { additionalNamespaces: { '': defaultNs } } : {}),
  });
  const state: FragmentParse = { builder: new ElementBuilder(), root: undefined, failure: undefined };
  const fail = (message: string): void => {
    state.failure ??= new XmlFragmentError(message, parser.line, parser.column);
  };
  listen(parser, {
    doctype: () => fail('DOCTYPE is not allowed'),
    error: (err) => fail(err.message.replace(/^[^:]*:\d+:\d+: /, '')),
    opentag: (tag) => state.builder.open(tag),
    text: (t) => state.builder.text(t),
    cdata: (t) => state.builder.text(t),
    closetag: () => {
      const el = state.builder.close();
      if (el) state.root = el;
    },
  });
  const entry = { parser, state };
  fragmentParsers.set(defaultNs, entry);
  return entry;
}

/**
 * Parses one element from a string. `defaultNs` is the namespace an unqualified root gets
 * (Prosody stores `<message>` without `xmlns='jabber:client'`). DOCTYPEs and entity
 * declarations are refused.
 */
export function parseElement(xml: string, defaultNs = ''): XmlElement {
  const { parser, state } = fragmentParser(defaultNs);
  state.builder = new ElementBuilder();
  state.root = undefined;
  state.failure = undefined;
  try {
    parser.write(xml).close();
  } catch (err) {
    state.failure ??= new XmlFragmentError(err instanceof Error ? err.message : String(err), parser.line, parser.column);
  }
  const { root, failure } = state;
  if (failure || !root) {
    fragmentParsers.delete(defaultNs);
    throw failure ?? new XmlFragmentError('no element', parser.line, parser.column);
  }
  return root;
}
