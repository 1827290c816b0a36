/**
 * Parsing into {@link XmlElement}s: the builder that turns saxes events into elements, and
 * parsing of a stand-alone fragment (a stored stanza, a PEP payload), refusing DTDs.
 */
import { SaxesParser, type SaxesAttributeNS, type SaxesTagNS } from 'saxes';
import { NS, type XmlElement, type XmlNode } from '../records/model.js';
import { listen, type NsParser } from './saxes-internals.js';

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
