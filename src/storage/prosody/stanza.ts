/**
 * Stanzas as Prosody stores them: as `xml` text (util/stanza.lua `tostring`) or, where a module
 * calls `st.preserialize`, as a plain table `{name, attr, [1..n] = children}` stored as JSON.
 *
 * Prosody's element model has no resolved namespaces: an element carries `attr.xmlns` only where
 * the parser put one. util/xmppstream.lua leaves it off elements in the stream's default namespace
 * (`jabber:client`) until the first element in another namespace, below which every element has
 * one; util/xml.lua (used to read `xml` values back) sets it on every element with a namespace.
 * Namespaced attributes are keyed `uri\x01local`, except the XML namespace, which is `xml:local`.
 */
import { NS, type XmlElement, type XmlNode } from '../../records/model.js';
import { escapeAttribute, escapeText, splitClark, storedElement, storedText } from '../../xml/xml.js';
import { LuaTable, type LuaValue } from './lua.js';

export class PreserializedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PreserializedError';
  }
}

const XML_NS_PREFIX = 'xml:';
const NS_SEPARATOR = '\u0001';

function attrKeyFromProsody(key: string): string {
  if (key.startsWith(XML_NS_PREFIX)) return key;
  const sep = key.indexOf(NS_SEPARATOR);
  if (sep >= 0) return `{${key.slice(0, sep)}}${key.slice(sep + 1)}`;
  // st.deserialize also accepts `uri|local` (util/stanza.lua:411).
  const bar = key.indexOf('|');
  if (bar > 0 && bar < key.length - 1) return `{${key.slice(0, bar)}}${key.slice(bar + 1)}`;
  return key;
}

function attrKeyToProsody(key: string): string {
  const clark = splitClark(key);
  if (!clark) return key;
  if (clark.uri === NS.xml) return `${XML_NS_PREFIX}${clark.local}`;
  return `${clark.uri}${NS_SEPARATOR}${clark.local}`;
}

/**
 * A preserialized stanza table to an element. `inheritedNs` is the namespace an element without
 * `attr.xmlns` is in: `jabber:client` for a stanza, the parent's namespace below it.
 */
export function fromPreserialized(value: LuaValue, inheritedNs: string = NS.client): XmlElement {
  if (!(value instanceof LuaTable)) throw new PreserializedError('a preserialized stanza must be a table');
  const name = value.get('name');
  if (typeof name !== 'string' || name === '') throw new PreserializedError('a preserialized stanza needs a name');
  const attrTable = value.get('attr');
  const attrs: Record<string, string> = {};
  let xmlns = inheritedNs;
  if (attrTable instanceof LuaTable) {
    for (const [key, v] of attrTable.hash) {
      if (typeof v !== 'string') continue;
      if (key === 'xmlns') xmlns = v;
      else attrs[attrKeyFromProsody(key)] = v;
    }
  } else if (attrTable !== undefined) {
    throw new PreserializedError(`attr of <${name}> is not a table`);
  }
  const children: XmlNode[] = [];
  for (const child of value.array) {
    if (typeof child === 'string') {
      if (child === '') continue;
      // Adjacent text runs are one text node, as the XML parser would give.
      const last = children[children.length - 1];
      if (typeof last === 'string') children[children.length - 1] = last + child;
      else children.push(child);
    } else if (child instanceof LuaTable) {
      children.push(fromPreserialized(child, xmlns));
    }
    // st.deserialize ignores anything else (numbers, booleans) in the child list.
  }
  return { name, xmlns, attrs, children };
}

/**
 * An element to the table `st.preserialize` would have made of it after util/xmppstream.lua
 * parsed it from a `jabber:client` stream.
 */
export function toPreserialized(el: XmlElement, streamNs: string = NS.client): LuaTable {
  return preserialize(el, streamNs, false);
}

function preserialize(el: XmlElement, streamNs: string, belowForeign: boolean): LuaTable {
  const foreign = belowForeign || el.xmlns !== streamNs;
  const attr = new LuaTable();
  for (const [key, value] of Object.entries(el.attrs)) attr.set(attrKeyToProsody(key), value);
  if (foreign) attr.set('xmlns', el.xmlns);
  const table = LuaTable.of({ attr, name: el.name });
  for (const child of el.children) table.array.push(typeof child === 'string' ? child : preserialize(child, streamNs, foreign));
  return table;
}

// ---------------------------------------------------------------------------------------------
// `xml` values

/** Reads an `xml` value. A top-level element without `xmlns` is a `jabber:client` stanza. */
export function parseXmlValue(text: string): XmlElement {
  return storedElement(text, NS.client);
}

/**
 * Writes an element as util/stanza.lua's `tostring` does: single-quoted attributes, `'"&<>`
 * escaped in text and attributes, `xmlns` only where it differs from the parent's, none on a
 * top-level `jabber:client` stanza, one `nsN` prefix per foreign attribute. Attribute values also
 * get TAB/LF/CR as references (Prosody writes them raw and loses them to normalisation).
 */
export function serializeXmlValue(el: XmlElement): string {
  // A stanza kept as text without a root `xmlns` (as read from storage, or taken from a document
  // by the reader's fast path) is copied: the text is well-formed, and quoting style is all it
  // may differ in from what Prosody writes.
  const text = storedText(el, NS.client);
  if (text !== undefined) return text;
  const out: string[] = [];
  writeElement(el, NS.client, out);
  return out.join('');
}

function escapeProsodyText(value: string): string {
  return escapeText(value).replace(/['"]/g, (c) => (c === "'" ? '&apos;' : '&quot;'));
}

function writeElement(el: XmlElement, parentNs: string, out: string[]): void {
  out.push('<', el.name);
  if (el.xmlns !== parentNs) out.push(" xmlns='", escapeAttribute(el.xmlns), "'");
  let nsid = 0;
  for (const [key, value] of Object.entries(el.attrs)) {
    const clark = splitClark(key);
    if (clark && clark.uri !== NS.xml) {
      nsid++;
      out.push(` xmlns:ns${nsid}='`, escapeAttribute(clark.uri), `' ns${nsid}:${clark.local}='`, escapeAttribute(value), "'");
    } else {
      out.push(' ', clark ? `xml:${clark.local}` : key, "='", escapeAttribute(value), "'");
    }
  }
  if (el.children.length === 0) {
    out.push('/>');
    return;
  }
  out.push('>');
  for (const child of el.children) {
    if (typeof child === 'string') out.push(escapeProsodyText(child));
    else writeElement(child, el.xmlns, out);
  }
  out.push('</', el.name, '>');
}
