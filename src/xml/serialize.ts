/**
 * Serialises an {@link XmlElement} with the namespace declarations it needs and correct escaping.
 * A stored element (stored-element.ts) is written by copying its text.
 */
import type { XmlElement } from '../records/model.js';
import { escapeAttribute, escapeText } from './escape.js';
import { verbatimText } from './stored-element.js';

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
  const verbatim = verbatimText(el);
  if (verbatim !== undefined) return verbatim;
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

