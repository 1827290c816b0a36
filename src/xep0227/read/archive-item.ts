/**
 * The reader's fast path for archived messages: one `<result>` item of a XEP-0227 archive, taken
 * from the document text without the streaming parser when it has the usual shape
 *
 *   <result xmlns='urn:xmpp:mam:2' id='…'><forwarded xmlns='urn:xmpp:forward:0'>
 *     <delay xmlns='urn:xmpp:delay' stamp='…'/><message xmlns='jabber:client' …>…</message>
 *   </forwarded></result>
 *
 * and all of it is in the verbatim subset (verbatim.ts). The message keeps its text: it is parsed
 * only if its children are read, and storage copies it. Anything else answers undefined and goes
 * through the parser, which either accepts it with the same meaning or reports where it is wrong.
 *
 * The item is read in one pass over its text, tag by tag, with the verbatim scanner: what is
 * accepted is exactly the items whose message, and whose other elements with the message left
 * out, the verbatim scan accepts (each of `<result>`, `<forwarded>`, `<delay>` and `<message>`
 * declaring its namespace, and no attribute of `<result>`, `<delay>` or `<message>` holding TAB,
 * LF or CR), with only white space between the four elements and `<delay>` empty.
 *
 * Only what the archive record is made of comes out (toArchive reads nothing else of an item):
 * no element objects for `<result>`, `<forwarded>` and `<delay>`, which would be garbage at once.
 */
import { GT, LT, skipXmlSpace } from '../../xml/chars.js';
import { NS, type XmlElement } from '../../records/model.js';
import { VerbatimScanner, textIs } from '../../xml/verbatim-scanner.js';
import { scannedElement } from '../../xml/stored-element.js';

export interface ArchiveItemParts {
  /** `<result>`'s attributes but `xmlns`. */
  readonly resultAttrs: Readonly<Record<string, string>>;
  /** `<delay>`'s attributes but `xmlns`. */
  readonly delayAttrs: Readonly<Record<string, string>>;
  /** The stored `<message>`, in `jabber:client`. */
  readonly stanza: XmlElement;
  /** Deepest nesting inside the item, `<result>` counting as 1. */
  readonly depth: number;
}

const scanner = new VerbatimScanner();

/** Whether the tag just read is named `name` (its `<` at `at`) and declares exactly `uri` as its default namespace. */
function tagIs(xml: string, at: number, name: string, uri: string): boolean {
  return (
    textIs(xml, at + 1, scanner.tagNameEnd, name) && scanner.xmlnsSpace >= 0 && textIs(xml, scanner.xmlnsStart, scanner.xmlnsEnd, uri)
  );
}

/** The start tag at `at` (before `to`), as {@link VerbatimScanner.startTag}; -1 if there is none. */
function startTag(xml: string, at: number, to: number, attrs?: Record<string, string>): number {
  return at < to && xml.charCodeAt(at) === LT ? scanner.startTag(at, attrs) : -1;
}

/** Index after the end tag `</name S? >` at `at`, or -1. */
function endTag(xml: string, at: number, name: string): number {
  if (!xml.startsWith('</', at) || !xml.startsWith(name, at + 2)) return -1;
  const i = skipXmlSpace(xml, at + 2 + name.length);
  return xml.charCodeAt(i) === GT ? i + 1 : -1;
}

/**
 * The parts of the archive item `xml[from, to)`, or undefined for the parser to handle. The caller
 * has found every character of it to be one XML can carry, and `]]>` not to occur in it; the
 * item ends with the `>` of its end tag.
 */
export function readArchiveItem(xml: string, from: number, to: number): ArchiveItemParts | undefined {
  if (xml.charCodeAt(to - 1) !== GT) return undefined;
  scanner.begin(xml, from, to);
  try {
    return readItem(xml, from, to);
  } finally {
    scanner.end();
  }
}

function readItem(xml: string, from: number, to: number): ArchiveItemParts | undefined {
  const resultAttrs: Record<string, string> = {};
  let i = startTag(xml, from, to, resultAttrs);
  if (i < 0 || scanner.selfClosing || !tagIs(xml, from, 'result', NS.mam)) return undefined;

  const forwardedAt = skipXmlSpace(xml, i);
  // Its attributes are checked, not kept: toArchive reads none.
  i = startTag(xml, forwardedAt, to);
  if (i < 0 || scanner.selfClosing || !tagIs(xml, forwardedAt, 'forwarded', NS.forward)) return undefined;

  const delayAt = skipXmlSpace(xml, i);
  const delayAttrs: Record<string, string> = {};
  i = startTag(xml, delayAt, to, delayAttrs);
  if (i < 0 || !tagIs(xml, delayAt, 'delay', NS.delay)) return undefined;
  if (!scanner.selfClosing) {
    if (!xml.startsWith('</delay>', i)) return undefined;
    i += '</delay>'.length;
  }

  const messageStart = skipXmlSpace(xml, i);
  const messageAttrs: Record<string, string> = {};
  const messageEnd = messageStart < to && xml.charCodeAt(messageStart) === LT ? scanner.element(messageStart, messageAttrs) : -1;
  if (messageEnd < 0 || !textIs(xml, messageStart + 1, scanner.rootNameEnd, 'message')) return undefined;
  const xmlnsSpace = scanner.rootXmlnsSpace;
  const xmlnsEnd = scanner.rootXmlnsEnd;
  if (xmlnsSpace < 0 || !textIs(xml, scanner.rootXmlnsStart, xmlnsEnd, NS.client)) return undefined;
  const depth = 2 + scanner.depth;

  i = endTag(xml, skipXmlSpace(xml, messageEnd), 'forwarded');
  if (i < 0) return undefined;
  i = endTag(xml, skipXmlSpace(xml, i), 'result');
  if (i !== to) return undefined;

  // Stored without the root's declaration, as Prosody stores a `jabber:client` stanza.
  const bare = xml.slice(messageStart, xmlnsSpace) + xml.slice(xmlnsEnd + 1, messageEnd);
  return { resultAttrs, delayAttrs, stanza: scannedElement(bare, NS.client, 'message', messageAttrs), depth };
}
