/**
 * Elements kept as their stored text (an archived message, a PEP payload): parsed only when their
 * attributes or children are read, and serialised by copying the text.
 */
import type { XmlElement, XmlNode } from '../records/model.js';
import { escapeAttribute } from './escape.js';
import { parseElement } from './parse.js';
import { scanVerbatim } from './verbatim.js';

/**
 * What a stored element keeps: its text, and its parsed tree once attributes or children are read.
 * `head`: where the root does not declare its namespace, its start tag's name with the declaration,
 * `<name xmlns='…'`, which replaces `<name` of `xml` when serialised; undefined where it does, and
 * `xml` is copied as it is.
 */
interface StoredState {
  readonly xml: string;
  readonly defaultNs: string;
  readonly head: string | undefined;
}

/**
 * An element kept as its text. Its attributes and children are own enumerable accessors, so a
 * copy made with spread syntax (a changed element) or a deep comparison reads them as for any
 * element; the text is in private fields, which neither sees. A class rather than
 * `Object.defineProperties` on a literal, which costs several times as much per element, paid for
 * every archived message exported; the fields are the element's own rather than an object of
 * their own, one allocation less per element.
 */
class StoredXmlElement {
  readonly name: string;
  readonly xmlns: string;
  declare readonly attrs: Readonly<Record<string, string>>;
  declare readonly children: readonly XmlNode[];
  readonly #xml: string;
  readonly #defaultNs: string;
  readonly #head: string | undefined;
  #tree: XmlElement | undefined;

  // One pair of accessor functions for all stored elements: getters of each element's own would
  // make every element a dictionary-mode object of about 700 bytes.
  static readonly #lazyAttrs: PropertyDescriptor = {
    enumerable: true,
    get(this: StoredXmlElement) {
      return StoredXmlElement.#parsed(this).attrs;
    },
  };

  static readonly #lazyChildren: PropertyDescriptor = {
    enumerable: true,
    get(this: StoredXmlElement) {
      return StoredXmlElement.#parsed(this).children;
    },
  };

  /** `attrs` when the caller has read them with the start tag; otherwise they wait, as the children do. */
  constructor(name: string, xmlns: string, xml: string, defaultNs: string, head: string | undefined, attrs?: Record<string, string>) {
    this.name = name;
    this.xmlns = xmlns;
    if (attrs) this.attrs = attrs;
    else Object.defineProperty(this, 'attrs', StoredXmlElement.#lazyAttrs);
    Object.defineProperty(this, 'children', StoredXmlElement.#lazyChildren);
    this.#xml = xml;
    this.#defaultNs = defaultNs;
    this.#head = head;
    this.#tree = undefined;
  }

  static #parsed(el: StoredXmlElement): XmlElement {
    return (el.#tree ??= parseElement(el.#xml, el.#defaultNs));
  }

  static stateOf(el: XmlElement): StoredState | undefined {
    return #xml in el ? { xml: el.#xml, defaultNs: el.#defaultNs, head: el.#head } : undefined;
  }

  /** The element's text, or undefined for any other element. */
  static xmlOf(el: XmlElement): string | undefined {
    return #xml in el ? el.#xml : undefined;
  }

  /** Its head (see {@link StoredState}); undefined for any other element, or where the root declares its namespace. */
  static headOf(el: XmlElement): string | undefined {
    return #xml in el ? el.#head : undefined;
  }
}

function storedState(el: XmlElement): StoredState | undefined {
  return StoredXmlElement.stateOf(el);
}

/** The text a stored element is serialised from (its root's namespace declared); undefined for any other element. */
export function verbatimText(el: XmlElement): string | undefined {
  const state = storedState(el);
  if (!state) return undefined;
  return state.head === undefined ? state.xml : state.head + state.xml.slice(state.head.indexOf(' '));
}

/** Where {@link writeVerbatim} writes: text in order. */
export interface TextSink {
  write(text: string): void;
}

/**
 * Writes the text of {@link verbatimText} to `sink` in pieces that are substrings of what the
 * element keeps, so that nothing is concatenated (and copied) on the way; false, and nothing
 * written, for any other element.
 */
export function writeVerbatim(el: XmlElement, sink: TextSink): boolean {
  // Two lookups rather than a state object: this runs once per archived message exported.
  const xml = StoredXmlElement.xmlOf(el);
  if (xml === undefined) return false;
  const head = StoredXmlElement.headOf(el);
  if (head === undefined) {
    sink.write(xml);
  } else {
    sink.write(head);
    sink.write(xml.slice(head.indexOf(' ')));
  }
  return true;
}

/**
 * The text of a stored element (see {@link storedElement}) whose root does not declare its
 * namespace but takes `defaultNs`, as written where that is the namespace in scope; undefined for
 * any other element. Lets a storage format that omits `xmlns='jabber:client'` copy the text.
 */
export function storedText(el: XmlElement, defaultNs: string): string | undefined {
  const state = storedState(el);
  return state && state.head !== undefined && state.defaultNs === defaultNs ? state.xml : undefined;
}

/**
 * Whether an element's text may contain `needle`: false only for a stored element whose text
 * does not, which lets a caller skip reading (and so parsing) its children.
 */
export function mayContainText(el: XmlElement, needle: string): boolean {
  const xml = StoredXmlElement.xmlOf(el);
  return xml === undefined || xml.includes(needle);
}

/**
 * An element stored as text (an archived message, a PEP payload): like {@link parseElement}, but
 * when the text is in the verbatim subset (see verbatim.ts) it is parsed only if its attributes or
 * children are read, and serialised by copying it.
 */
export function storedElement(xml: string, defaultNs = ''): XmlElement {
  const scanned = scanVerbatim(xml, defaultNs);
  if (!scanned) return parseElement(xml, defaultNs);
  return new StoredXmlElement(scanned.name, scanned.xmlns, xml, defaultNs, scanned.declaresNamespace ? undefined : startWithDeclaration(scanned.name, defaultNs));
}

/**
 * A stored element whose text the caller has already found to be in the verbatim subset, with a
 * root named `name` that does not declare its namespace (it takes `defaultNs`) and whose
 * attributes, as parsing gives them, are `attrs`. Its children are parsed only when read.
 */
export function scannedElement(xml: string, defaultNs: string, name: string, attrs: Record<string, string>): XmlElement {
  return new StoredXmlElement(name, defaultNs, xml, defaultNs, startWithDeclaration(name, defaultNs), attrs);
}

/**
 * `<name xmlns='…'` for each root name and default namespace met (a handful: `message` in
 * `jabber:client`, a PEP payload's), kept so that each stored element does not build its own.
 * Declared even when the namespace is empty: under a parent with a default namespace the root
 * would inherit it.
 */
const heads = new Map<string, Map<string, string>>();
const HEADS_KEPT = 64;

/** The last head asked for: a run of archived messages asks for the same one each time. */
let lastHead = { name: '', uri: '', head: "< xmlns=''" };

function startWithDeclaration(name: string, uri: string): string {
  if (name === lastHead.name && uri === lastHead.uri) return lastHead.head;
  const head = declaredHead(name, uri);
  lastHead = { name, uri, head };
  return head;
}

function declaredHead(name: string, uri: string): string {
  let names = heads.get(uri);
  if (names === undefined) {
    names = new Map();
    if (heads.size < HEADS_KEPT) heads.set(uri, names);
  }
  let head = names.get(name);
  if (head === undefined) {
    head = `<${name} xmlns='${escapeAttribute(uri)}'`;
    if (names.size < HEADS_KEPT) names.set(name, head);
  }
  return head;
}

