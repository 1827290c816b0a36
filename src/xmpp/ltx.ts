/**
 * Typed access to xmpp.js's element class (ltx) and builder. xmpp.js 0.13 ships no type
 * declarations, so the little of it we use is declared here once; everything in src/xmpp builds
 * and reads stanzas through this file.
 */
import { createRequire } from 'node:module';
import type { XmlElement } from '../records/model.js';

/** An ltx element as xmpp.js parses and builds them. */
export interface Stanza {
  name: string;
  attrs: Record<string, string | undefined>;
  children: (Stanza | string)[];
  parent: Stanza | null;
  is(name: string, xmlns?: string): boolean;
  getName(): string;
  getNS(): string | undefined;
  getChild(name: string, xmlns?: string): Stanza | undefined;
  getChildren(name: string, xmlns?: string): Stanza[];
  getChildText(name: string, xmlns?: string): string | null;
  getChildElements(): Stanza[];
  getText(): string;
  toString(): string;
}

export type Child = Stanza | string | null | undefined | false | readonly Child[];
export type Attrs = Record<string, string | number | null | undefined>;

type Factory = (name: string, attrs?: Attrs | null, ...children: Child[]) => Stanza;

interface XmppCore {
  xml: Factory;
}

// @xmpp/component-core is a dependency of @xmpp/component, not of ours: resolve it from there.
const fromHere = createRequire(import.meta.url);
const core = createRequire(fromHere.resolve('@xmpp/component'))('@xmpp/component-core') as XmppCore;

/** `x('iq', { type: 'get' }, x('ping', { xmlns: 'urn:xmpp:ping' }))`; null, false and '' children are dropped. */
export const x: Factory = core.xml;

/** The namespace table is the records' one (records/namespaces.ts). */
export { NS } from '../records/namespaces.js';

/** Elements anywhere below `el` (not `el` itself), depth first, optionally filtered. */
export function descendants(el: Stanza, name?: string, xmlns?: string): Stanza[] {
  const out: Stanza[] = [];
  const walk = (node: Stanza): void => {
    for (const child of node.getChildElements()) {
      if (name === undefined || child.is(name, xmlns)) out.push(child);
      walk(child);
    }
  };
  walk(el);
  return out;
}

/** The first element child, whatever its name: the payload of an IQ. */
export function firstElement(el: Stanza): Stanza | undefined {
  return el.getChildElements()[0];
}

/** A record's payload (xporta's model) as an element to send. */
export function fromModel(el: XmlElement, parentNs?: string): Stanza {
  const attrs: Attrs = {};
  if (el.xmlns !== parentNs) attrs.xmlns = el.xmlns;
  for (const [key, value] of Object.entries(el.attrs)) {
    // Clark-notation attributes ({uri}local) have no ltx form without prefixes; a payload we
    // publish never carries one, so dropping them is safer than inventing prefixes.
    if (!key.startsWith('{')) attrs[key] = value;
  }
  return x(el.name, attrs, ...el.children.map((c) => (typeof c === 'string' ? c : fromModel(c, el.xmlns))));
}
