/**
 * Elements kept as their stored text (an archived message, a PEP payload): parsed only when their
 * attributes or children are read, and serialised by copying the text.
 */
import type { XmlElement, XmlNode } from '../records/model.js';
import { escapeAttribute } from './escape.js';
import { parseElement } from './parse.js';
import { scanVerbatim } from './verbatim.js';

/** What a stored element keeps: its text, and its parsed tree once attributes or children are read. */
interface StoredState {
  readonly xml: string;
  readonly defaultNs: string;
  /**
   * Where the root does not declare its namespace: its start tag's name with the declaration,
   * `<name xmlns='…'`, which replaces `<name` of `xml` when serialised. Undefined where it does,
   * and `xml` is copied as it is.
   */
  readonly head: string | undefined;
  tree: XmlElement | undefined;
}

/**
 * An element kept as its text. Its attributes and children are own enumerable accessors, so a
 * copy made with spread syntax (a changed element) or a deep comparison reads them as for any
 * element; the text is a private field, which neither sees. A class rather than
 * `Object.defineProperties` on a literal, which costs several times as much per element, paid for
 * every archived message exported.
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
  const state = storedState(el);
  if (!state) return false;
  if (state.head === undefined) {
    sink.write(state.xml);
  } else {
    sink.write(state.head);
    sink.write(state.xml.slice(state.head.indexOf(' ')));
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
  return { xml, defaultNs, head: declaresNamespace ? undefined : startWithDeclaration(name, defaultNs), tree: undefined };
}

/**
 * `<name xmlns='…'` for each root name and default namespace met (a handful: `message` in
 * `jabber:client`, a PEP payload's), kept so that each stored element does not build its own.
 */
const heads = new Map<string, Map<string, string>>();
const HEADS_KEPT = 64;

function startWithDeclaration(name: string, uri: string): string {
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

