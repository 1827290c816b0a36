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
 */
import { APOS, EQUALS, GT, LT, QUOT, SLASH, isXmlSpace, skipXmlSpace } from '../../xml/chars.js';
import { NS, type XmlElement } from '../../records/model.js';
import { scanVerbatim } from '../../xml/verbatim.js';
import { scannedElement } from '../../xml/stored-element.js';

export interface ArchiveItemTree {
  /** `<result>` with `<forwarded>`, `<delay>` and the stored `<message>` below it. */
  readonly result: XmlElement;
  /** Deepest nesting inside the item, `<result>` counting as 1. */
  readonly depth: number;
}

interface StartTag {
  readonly name: string;
  readonly attrs: Record<string, string>;
  /** Index just after the tag's `>`. */
  readonly end: number;
  readonly selfClosing: boolean;
  /** Where ` xmlns='…'` stands, from the space before it to the closing quote inclusive; -1 if absent. */
  readonly xmlnsFrom: number;
  readonly xmlnsTo: number;
}

const ENTITY = /&(amp|lt|gt|apos|quot);/g;
const ENTITY_TEXT: Record<string, string> = { amp: '&', lt: '<', gt: '>', apos: "'", quot: '"' };

/**
 * An attribute value as a parser reports it. Only the five predefined entities can occur in
 * scanned text; a value with TAB, LF or CR (which a parser normalises) is left to the parser.
 */
function attributeValue(raw: string): string | undefined {
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x09 || c === 0x0a || c === 0x0d) return undefined;
  }
  return raw.includes('&') ? raw.replace(ENTITY, (_, name: string) => ENTITY_TEXT[name] ?? '') : raw;
}

/** Names met on nearly every archived message, as constants: a key sliced from the text costs a lookup. */
const COMMON_NAMES = ['id', 'to', 'from', 'type', 'stamp', 'xml:lang'];

function attributeName(xml: string, start: number, end: number): string {
  for (const name of COMMON_NAMES) if (name.length === end - start && xml.startsWith(name, start)) return name;
  return xml.slice(start, end);
}

/**
 * The start tag at `at`. Only tags that the verbatim scan of the same text accepts are relied
 * upon; on anything unexpected this answers undefined rather than guess.
 */
function readStartTag(xml: string, at: number): StartTag | undefined {
  if (xml.charCodeAt(at) !== LT) return undefined;
  let i = at + 1;
  for (let c = xml.charCodeAt(i); i < xml.length && !isXmlSpace(c) && c !== GT && c !== SLASH; c = xml.charCodeAt(++i));
  const name = xml.slice(at + 1, i);
  const attrs: Record<string, string> = {};
  let xmlnsFrom = -1;
  let xmlnsTo = -1;
  for (;;) {
    const spaceStart = i;
    i = skipXmlSpace(xml, i);
    const c = xml.charCodeAt(i);
    if (c === GT) return { name, attrs, end: i + 1, selfClosing: false, xmlnsFrom, xmlnsTo };
    if (c === SLASH) return xml.charCodeAt(i + 1) === GT ? { name, attrs, end: i + 2, selfClosing: true, xmlnsFrom, xmlnsTo } : undefined;
    if (i === spaceStart || Number.isNaN(c)) return undefined;
    const nameStart = i;
    for (let n = c; i < xml.length && !isXmlSpace(n) && n !== EQUALS; n = xml.charCodeAt(++i));
    const nameEnd = i;
    i = skipXmlSpace(xml, i);
    if (xml.charCodeAt(i) !== EQUALS) return undefined;
    i = skipXmlSpace(xml, i + 1);
    const quote = xml.charCodeAt(i);
    if (quote !== APOS && quote !== QUOT) return undefined;
    const close = xml.indexOf(quote === APOS ? "'" : '"', i + 1);
    if (close < 0) return undefined;
    if (nameEnd - nameStart === 5 && xml.startsWith('xmlns', nameStart)) {
      xmlnsFrom = spaceStart;
      xmlnsTo = close + 1;
    } else {
      const value = attributeValue(xml.slice(i + 1, close));
      if (value === undefined) return undefined;
      attrs[attributeName(xml, nameStart, nameEnd)] = value;
    }
    i = close + 1;
  }
}

/** Start of the end tag `</name S? >` that finishes just before `end`, or -1. */
function endTagBefore(xml: string, end: number, name: string): number {
  if (xml.charCodeAt(end - 1) !== GT) return -1;
  const start = skipSpaceBack(xml, end - 1) - name.length - 2;
  return start >= 0 && xml.startsWith('</', start) && xml.startsWith(name, start + 2) ? start : -1;
}

function skipSpaceBack(xml: string, i: number): number {
  while (i > 0 && isXmlSpace(xml.charCodeAt(i - 1))) i--;
  return i;
}

/**
 * The tree of one archive item in `xml` (exactly the item's text), or undefined for the parser to
 * handle. The caller has found every character of it to be one XML can carry.
 */
export function readArchiveItem(xml: string): ArchiveItemTree | undefined {
  const result = readStartTag(xml, 0);
  if (!result || result.name !== 'result' || result.selfClosing) return undefined;
  const forwarded = readStartTag(xml, skipXmlSpace(xml, result.end));
  if (!forwarded || forwarded.name !== 'forwarded' || forwarded.selfClosing) return undefined;
  const delay = readStartTag(xml, skipXmlSpace(xml, forwarded.end));
  if (!delay || delay.name !== 'delay') return undefined;
  let delayEnd = delay.end;
  if (!delay.selfClosing) {
    if (!xml.startsWith('</delay>', delayEnd)) return undefined;
    delayEnd += '</delay>'.length;
  }
  const messageStart = skipXmlSpace(xml, delayEnd);
  const resultClose = endTagBefore(xml, xml.length, 'result');
  const forwardedClose = resultClose < 0 ? -1 : endTagBefore(xml, skipSpaceBack(xml, resultClose), 'forwarded');
  if (forwardedClose < 0) return undefined;
  const messageEnd = skipSpaceBack(xml, forwardedClose);
  if (messageEnd <= messageStart) return undefined;

  // The item is in the verbatim subset when both the message and the rest around it are.
  const outer = scanVerbatim(xml.slice(0, messageStart) + xml.slice(messageEnd), '', true);
  if (!outer || outer.xmlns !== NS.mam || !outer.declaresNamespace) return undefined;
  const messageXml = xml.slice(messageStart, messageEnd);
  const message = scanVerbatim(messageXml, NS.forward, true);
  if (!message || message.name !== 'message' || message.xmlns !== NS.client || !message.declaresNamespace) return undefined;
  const messageTag = readStartTag(messageXml, 0);
  if (!messageTag || messageTag.xmlnsFrom < 0) return undefined;
  // Its outer elements are checked by the scan of `outer`: each must declare the namespace expected.
  if (!declares(xml, forwarded, NS.forward) || !declares(xml, delay, NS.delay)) return undefined;

  // Stored without the root's declaration, as Prosody stores a `jabber:client` stanza.
  const bare = messageXml.slice(0, messageTag.xmlnsFrom) + messageXml.slice(messageTag.xmlnsTo);
  const stanza = scannedElement(bare, NS.client, 'message', messageTag.attrs);
  const delayElement: XmlElement = { name: 'delay', xmlns: NS.delay, attrs: delay.attrs, children: [] };
  const forwardedElement: XmlElement = { name: 'forwarded', xmlns: NS.forward, attrs: forwarded.attrs, children: [delayElement, stanza] };
  return {
    result: { name: 'result', xmlns: NS.mam, attrs: result.attrs, children: [forwardedElement] },
    depth: Math.max(outer.depth, 2 + message.depth),
  };
}

/** Whether the tag declares exactly `uri` as its default namespace (scanned: no entity in it). */
function declares(xml: string, tag: StartTag, uri: string): boolean {
  if (tag.xmlnsFrom < 0) return false;
  const valueStart = skipXmlSpace(xml, xml.indexOf('=', tag.xmlnsFrom) + 1) + 1;
  return tag.xmlnsTo - 1 - valueStart === uri.length && xml.startsWith(uri, valueStart);
}
