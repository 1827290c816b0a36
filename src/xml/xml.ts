/**
 * The element tree codec shared by the XEP-0227 writer/reader and the storage backends, as one
 * import: escaping (escape.ts), serialisation (serialize.ts), elements kept as stored text
 * (stored-element.ts), parsing (parse.ts) and the saxes handler installation (saxes-internals.ts).
 */
export { XmlCharError, escapeAttribute, escapeText } from './escape.js';
export { serializeElement, splitClark } from './serialize.js';
export { mayContainText, scannedElement, storedElement, storedText, verbatimText } from './stored-element.js';
export { ElementBuilder, XmlFragmentError, attributeKey, parseElement } from './parse.js';
export { listen, type NsParser, type SaxesHandlers } from './saxes-internals.js';
