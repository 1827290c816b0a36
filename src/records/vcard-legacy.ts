/**
 * The vcard-temp (XEP-0054) view of a PEP profile, as Prosody's mod_vcard_legacy builds it for a
 * vcard-temp query: from the `urn:xmpp:vcard4` item (XEP-0292), else the nickname (XEP-0172),
 * and the avatar (XEP-0084) as PHOTO. For targets that serve vcard-temp only (ejabberd), where
 * an account that kept its profile in PEP alone would otherwise show an empty vCard.
 */
import { createHash } from 'node:crypto';
import { childElements, element, firstChild, textOf, type PepItemRecord, type XmlElement, type XmlNode } from './model.js';
import { NS } from './namespaces.js';

export const VCARD4_NODE = 'urn:xmpp:vcard4';
export const NICK_NODE = 'http://jabber.org/protocol/nick';
export const AVATAR_METADATA_NODE = 'urn:xmpp:avatar:metadata';
export const AVATAR_DATA_NODE = 'urn:xmpp:avatar:data';

/** The PEP items the conversion reads: the last item of each profile node, and the avatar data by id. */
export class PepProfile {
  private vcard4: XmlElement | undefined;
  private nick: XmlElement | undefined;
  private metadata: XmlElement | undefined;
  private readonly avatarData = new Map<string, string>();

  /** Takes the item if it belongs to a profile node; later items replace earlier ones, as the last published wins. */
  add(item: PepItemRecord): void {
    const payload = item.payload;
    if (!payload) return;
    if (item.node === VCARD4_NODE && payload.name === 'vcard' && payload.xmlns === NS.vcard4) this.vcard4 = payload;
    else if (item.node === NICK_NODE && payload.name === 'nick') this.nick = payload;
    else if (item.node === AVATAR_METADATA_NODE && payload.name === 'metadata') this.metadata = payload;
    else if (item.node === AVATAR_DATA_NODE && payload.name === 'data') this.avatarData.set(item.id, textOf(payload));
  }

  /** Whether there is anything a vcard-temp could show. */
  get present(): boolean {
    return this.vcard4 !== undefined || this.nick !== undefined || this.metadata !== undefined;
  }

  /** What Prosody answers to a vcard-temp query for this profile. */
  toVCardTemp(): XmlElement {
    const children: XmlElement[] = [];
    if (this.vcard4) children.push(...fromVCard4(this.vcard4));
    else if (this.nick && textOf(this.nick) !== '') children.push(tag('NICKNAME', textOf(this.nick)));
    const photo = this.photo();
    if (photo) children.push(photo);
    return element('vCard', NS.vcardTemp, {}, children);
  }

  private photo(): XmlElement | undefined {
    const info = this.metadata ? firstChild(this.metadata, 'info', this.metadata.xmlns) : undefined;
    if (!info) return undefined;
    const children: XmlElement[] = [];
    if (info.attrs.type !== undefined) children.push(tag('TYPE', info.attrs.type));
    if (info.attrs.url !== undefined) children.push(tag('EXTVAL', info.attrs.url));
    else if (info.attrs.id !== undefined) {
      const data = this.avatarData.get(info.attrs.id);
      if (data !== undefined) children.push(tag('BINVAL', data));
    }
    return element('PHOTO', NS.vcardTemp, {}, children);
  }
}

/** `<NAME>text</NAME>`; without text an empty element, as util.stanza's text_tag with nil. */
function tag(name: string, text?: string, children: readonly XmlNode[] = []): XmlElement {
  return element(name, NS.vcardTemp, {}, text === undefined ? children : [text, ...children]);
}

function childText(el: XmlElement | undefined, name: string): string | undefined {
  const child = el ? firstChild(el, name, el.xmlns) : undefined;
  return child ? textOf(child) : undefined;
}

/** `parameters/type/text` of a vCard4 property: home or work. */
function place(prop: XmlElement): XmlElement[] {
  const type = childText(firstChild(firstChild(prop, 'parameters', prop.xmlns) ?? prop, 'type', prop.xmlns), 'text');
  if (type === 'home') return [tag('HOME')];
  if (type === 'work') return [tag('WORK')];
  return [];
}

const SIMPLE: Readonly<Record<string, string>> = { nickname: 'text', title: 'text', role: 'text', categories: 'text', note: 'text', url: 'uri', bday: 'date' };

function fromVCard4(vcard4: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  out.push(tag('FN', childText(firstChild(vcard4, 'fn', vcard4.xmlns), 'text')));
  const n = firstChild(vcard4, 'n', vcard4.xmlns);
  out.push(
    tag('N', undefined, [
      tag('FAMILY', childText(n, 'surname')),
      tag('GIVEN', childText(n, 'given')),
      tag('MIDDLE', childText(n, 'additional')),
      tag('PREFIX', childText(n, 'prefix')),
      tag('SUFFIX', childText(n, 'suffix')),
    ]),
  );
  for (const prop of childElements(vcard4, undefined, vcard4.xmlns)) {
    const simple = SIMPLE[prop.name];
    if (simple !== undefined) {
      const text = childText(prop, simple);
      if (text !== undefined) out.push(tag(prop.name.toUpperCase(), text));
    } else if (prop.name === 'email') {
      const text = childText(prop, 'text');
      if (text !== undefined) out.push(tag('EMAIL', undefined, [tag('USERID', text), tag('INTERNET'), ...place(prop)]));
    } else if (prop.name === 'tel') {
      let text = childText(prop, 'uri');
      if (text !== undefined) {
        if (text.startsWith('tel:')) text = text.slice(4);
        out.push(tag('TEL', undefined, [tag('NUMBER', text), ...place(prop)]));
      }
    } else if (prop.name === 'adr') {
      const parts: [string, string][] = [
        ['POBOX', 'pobox'],
        ['EXTADD', 'ext'],
        ['STREET', 'street'],
        ['LOCALITY', 'locality'],
        ['REGION', 'region'],
        ['PCODE', 'code'],
        ['CTRY', 'country'],
      ];
      out.push(tag('ADR', undefined, [...parts.map(([to, from]) => tag(to, childText(prop, from))), ...place(prop)]));
    } else if (prop.name === 'impp') {
      const uri = childText(prop, 'uri');
      if (uri !== undefined && uri.startsWith('xmpp:')) out.push(tag('JABBERID', uri.slice(5)));
    } else if (prop.name === 'org') {
      out.push(tag('ORG', undefined, [tag('ORGNAME', childText(prop, 'text'))]));
    }
  }
  return out;
}

/** The avatar (XEP-0084) a vcard-temp PHOTO becomes: both items carry the SHA-1 of the image as id. */
export interface PepAvatar {
  readonly id: string;
  readonly metadata: XmlElement;
  readonly data: XmlElement;
}

/** The PEP form of a vcard-temp vCard: the `urn:xmpp:vcard4` item (id `current`) and the avatar, if it has an inline one. */
export interface PepVCard {
  readonly vcard4: XmlElement;
  readonly avatar?: PepAvatar;
}

const SIMPLE_FROM_TEMP: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(SIMPLE).map(([name, typ]) => [name.toUpperCase(), typ]));

/** `<name><child>text</child></name>` in vCard4; an absent or empty text gives an empty child, as util.stanza's text_tag. */
function v4(name: string, children: readonly XmlNode[] = []): XmlElement {
  return element(name, NS.vcard4, {}, children);
}

function v4Text(name: string, text: string | undefined): XmlElement {
  return v4(name, text === undefined || text === '' ? [] : [text]);
}

/** `parameters/type/text` for a HOME or WORK flag, as mod_vcard_legacy writes it. */
function v4Place(prop: XmlElement): XmlElement {
  const home = firstChild(prop, 'HOME', prop.xmlns) !== undefined;
  const work = firstChild(prop, 'WORK', prop.xmlns) !== undefined;
  const type = home ? [v4Text('text', 'home')] : work ? [v4Text('text', 'work')] : [];
  return v4('parameters', [v4('type', type)]);
}

/**
 * mod_vcard_legacy's `vcard_to_pep`: what Prosody publishes to PEP when a user sets a vcard-temp
 * vCard or logs in with one waiting in the `vcard` store. The mapping is the inverse of
 * {@link PepProfile.toVCardTemp}; a PHOTO given by EXTVAL has no avatar (its data and hash are unknown).
 */
export function vcardTempToPep(vcard: XmlElement): PepVCard {
  const ns = vcard.xmlns;
  const text = (el: XmlElement | undefined, name: string): string | undefined => childText(el, name);
  const out: XmlElement[] = [v4('fn', [v4Text('text', text(vcard, 'FN'))])];
  const n = firstChild(vcard, 'N', ns);
  out.push(
    v4('n', [
      v4Text('surname', text(n, 'FAMILY')),
      v4Text('given', text(n, 'GIVEN')),
      v4Text('additional', text(n, 'MIDDLE')),
      v4Text('prefix', text(n, 'PREFIX')),
      v4Text('suffix', text(n, 'SUFFIX')),
    ]),
  );
  let avatar: PepAvatar | undefined;
  for (const prop of childElements(vcard, undefined, ns)) {
    const simple = SIMPLE_FROM_TEMP[prop.name];
    if (simple !== undefined) {
      out.push(v4(prop.name.toLowerCase(), [v4Text(simple, textOf(prop))]));
    } else if (prop.name === 'EMAIL') {
      const userid = text(prop, 'USERID');
      if (userid !== undefined) out.push(v4('email', [v4Text('text', userid), v4Place(prop)]));
    } else if (prop.name === 'TEL') {
      const number = text(prop, 'NUMBER');
      if (number !== undefined) out.push(v4('tel', [v4Text('uri', `tel:${number}`), v4Place(prop)]));
    } else if (prop.name === 'ORG') {
      const orgname = text(prop, 'ORGNAME');
      if (orgname !== undefined) out.push(v4('org', [v4Text('text', orgname)]));
    } else if (prop.name === 'DESC') {
      out.push(v4('note', [v4Text('text', textOf(prop))]));
    } else if (prop.name === 'ADR') {
      const parts: [string, string][] = [
        ['pobox', 'POBOX'],
        ['ext', 'EXTADD'],
        ['street', 'STREET'],
        ['locality', 'LOCALITY'],
        ['region', 'REGION'],
        ['code', 'PCODE'],
        ['country', 'CTRY'],
      ];
      out.push(v4('adr', [...parts.map(([to, from]) => v4Text(to, text(prop, from))), v4Place(prop)]));
    } else if (prop.name === 'JABBERID') {
      out.push(v4('impp', [v4Text('uri', `xmpp:${textOf(prop)}`)]));
    } else if (prop.name === 'PHOTO') {
      avatar = photoToAvatar(prop) ?? avatar;
    }
  }
  return { vcard4: element('vcard', NS.vcard4, {}, out), ...(avatar ? { avatar } : {}) };
}

function photoToAvatar(photo: XmlElement): PepAvatar | undefined {
  const payload = childText(photo, 'BINVAL');
  if (payload === undefined) return undefined;
  const raw = Buffer.from(payload, 'base64');
  const id = createHash('sha1').update(raw).digest('hex');
  const type = childText(photo, 'TYPE');
  const info = element('info', AVATAR_METADATA_NODE, { bytes: String(raw.length), id, ...(type !== undefined ? { type } : {}) });
  return {
    id,
    metadata: element('metadata', AVATAR_METADATA_NODE, {}, [info]),
    data: element('data', AVATAR_DATA_NODE, {}, [payload]),
  };
}
