/**
 * The XEP-0227 elements of each kind of record, as the streaming writer (../writer.ts) puts them
 * into the document: strings where the writer copies text, element trees where it serialises.
 * Each is written for the container the writer has open around it, whose namespace it inherits.
 */
import {
  NS,
  element,
  type ArchiveRecord,
  type BlocklistRecord,
  type OfflineRecord,
  type PendingSubscriptionRecord,
  type PepItemRecord,
  type PepNodeRecord,
  type PrivacyRecord,
  type RosterRecord,
  type ScramCredentials,
  type UserStart,
  type XmlElement,
  type XmlNode,
} from '../../records/model.js';
import { escapeAttribute, escapeText } from '../../xml/escape.js';
import { serializeElement, splitClark } from '../../xml/serialize.js';

/** Prefix bound to {@link NS.xporta} on `<server-data>`, used for xporta's extension attributes. */
export const XP = 'xp';


export function userStartTag(user: UserStart): string {
  const parts = [`<user name='${escapeAttribute(user.name)}'`];
  if (user.password !== undefined) parts.push(` password='${escapeAttribute(user.password)}'`);
  let prefixes = 0;
  for (const [key, value] of Object.entries(user.extraAttributes)) {
    // These would duplicate or redefine attributes and make the document malformed.
    if (key === 'name' || key === 'password' || key === 'xmlns' || key.startsWith('xmlns:')) {
      throw new Error(`XEP-0227 writer: '${key}' cannot be an extra attribute of <user>`);
    }
    const clark = splitClark(key);
    if (clark) {
      const prefix = `ns${++prefixes}`;
      parts.push(` xmlns:${prefix}='${escapeAttribute(clark.uri)}' ${prefix}:${clark.local}='${escapeAttribute(value)}'`);
    } else {
      parts.push(` ${key}='${escapeAttribute(value)}'`);
    }
  }
  parts.push('>\n');
  return parts.join('');
}

export function scramElement(scram: ScramCredentials): string {
  return (
    `<scram-credentials xmlns='${NS.scram}' mechanism='${escapeAttribute(scram.mechanism)}'>` +
    `<iter-count>${scram.iterationCount}</iter-count>` +
    `<salt>${escapeText(scram.salt)}</salt>` +
    `<server-key>${escapeText(scram.serverKey)}</server-key>` +
    `<stored-key>${escapeText(scram.storedKey)}</stored-key>` +
    '</scram-credentials>\n'
  );
}

export function rosterElement(roster: RosterRecord): XmlElement {
  const items = roster.items.map((item) => {
    const attrs: Record<string, string> = { jid: item.jid };
    if (item.name !== undefined) attrs.name = item.name;
    attrs.subscription = item.subscription;
    if (item.ask !== undefined) attrs.ask = item.ask;
    if (item.approved !== undefined) attrs.approved = item.approved ? 'true' : 'false';
    return element(
      'item',
      NS.roster,
      attrs,
      item.groups.map((group) => element('group', NS.roster, {}, group === '' ? [] : [group])),
    );
  });
  return element('query', NS.roster, roster.version === undefined ? {} : { ver: roster.version }, items);
}

export function pepNodeElements(node: PepNodeRecord): string {
  const nodeAttr = { node: node.node };
  const fields: XmlNode[] = [
    element('field', NS.dataForms, { var: 'FORM_TYPE', type: 'hidden' }, [
      element('value', NS.dataForms, {}, [`${NS.pubsub}#node_config`]),
    ]),
  ];
  for (const field of node.config) {
    const attrs: Record<string, string> = { var: field.var };
    if (field.type !== undefined) attrs.type = field.type;
    fields.push(
      element(
        'field',
        NS.dataForms,
        attrs,
        field.values.map((v) => element('value', NS.dataForms, {}, v === '' ? [] : [v])),
      ),
    );
  }
  const parts = [
    serializeElement(
      element('configure', NS.pubsubOwner, nodeAttr, [element('x', NS.dataForms, { type: 'submit' }, fields)]),
      NS.pubsubOwner,
    ),
  ];
  if (node.affiliations.length > 0) {
    const children = node.affiliations.map((a) =>
      element('affiliation', NS.pubsubOwner, { jid: a.jid, affiliation: a.affiliation }),
    );
    parts.push(serializeElement(element('affiliations', NS.pubsubOwner, nodeAttr, children), NS.pubsubOwner));
  }
  if (node.subscriptions.length > 0) {
    const children = node.subscriptions.map((s) =>
      element(
        'subscription',
        NS.pubsubOwner,
        s.subid === undefined
          ? { jid: s.jid, subscription: s.subscription }
          : { jid: s.jid, subscription: s.subscription, subid: s.subid },
      ),
    );
    parts.push(serializeElement(element('subscriptions', NS.pubsubOwner, nodeAttr, children), NS.pubsubOwner));
  }
  return parts.join('');
}

export function pepItemElement(item: PepItemRecord): string {
  let tag = `<item id='${escapeAttribute(item.id)}'`;
  if (item.publisher !== undefined) tag += ` publisher='${escapeAttribute(item.publisher)}'`;
  if (item.published !== undefined) tag += ` ${XP}:published='${escapeAttribute(item.published)}'`;
  if (item.payload === null) return `${tag}/>`;
  return `${tag}>${serializeElement(item.payload, NS.pubsub)}</item>`;
}

export function archiveResult(record: ArchiveRecord): string {
  return `${archiveResultStart(record)}${serializeElement(record.stanza, NS.forward)}${ARCHIVE_RESULT_END}`;
}

/** An archive record's `<result>` up to its stanza (see {@link archiveResult}), which {@link ARCHIVE_RESULT_END} follows. */
export function archiveResultStart(record: ArchiveRecord): string {
  const withAttr = record.with !== undefined ? ` ${XP}:with='${escapeAttribute(record.with)}'` : '';
  return `<result xmlns='${NS.mam}' id='${escapeAttribute(record.id)}'${withAttr}><forwarded xmlns='${NS.forward}'><delay xmlns='${NS.delay}' stamp='${escapeAttribute(record.timestamp)}'/>`;
}

export const ARCHIVE_RESULT_END = '</forwarded></result>';

/** The `stamp` of the stanza's own XEP-0203 delay, which is where readers look for the time. */
function delayStamp(stanza: XmlElement): string | undefined {
  for (const child of stanza.children) {
    if (typeof child !== 'string' && child.name === 'delay' && child.xmlns === NS.delay) return child.attrs.stamp;
  }
  return undefined;
}

export function offlineMessage(record: OfflineRecord, host: string): string {
  // The storage time travels in the stanza's XEP-0203 <delay>, which every importer reads
  // (Prosody stores none and adds it on delivery, so it is added here as the server would,
  // marked so that xporta's reader takes it back out). Only when the stanza's own delay says
  // another time is it an extension attribute, which the reader removes again.
  const stamp = delayStamp(record.stanza);
  if (record.timestamp !== undefined && stamp === undefined) {
    const delay = element('delay', NS.delay, { ...(host !== '' ? { from: host } : {}), stamp: record.timestamp, [`{${NS.xporta}}storage`]: 'true' });
    return serializeElement({ ...record.stanza, children: [...record.stanza.children, delay] }, NS.pie);
  }
  if (record.timestamp !== undefined && stamp !== record.timestamp) {
    const attrs = { ...record.stanza.attrs, [`{${NS.xporta}}timestamp`]: record.timestamp };
    return serializeElement({ ...record.stanza, attrs }, NS.pie);
  }
  return serializeElement(record.stanza, NS.pie);
}

export function pendingPresence(record: PendingSubscriptionRecord): XmlElement {
  return element('presence', NS.client, { type: 'subscribe', from: record.from }, record.payload);
}

export function blocklistElement(record: BlocklistRecord): XmlElement {
  return element(
    'blocklist',
    NS.blocking,
    {},
    record.items.map((jid) => element('item', NS.blocking, { jid })),
  );
}

export function privacyElement(record: PrivacyRecord): XmlElement {
  const children: XmlElement[] = [];
  if (record.defaultList !== undefined) children.push(element('default', NS.privacy, { name: record.defaultList }));
  for (const list of record.lists) {
    const items = list.items.map((item) => {
      const attrs: Record<string, string> = {};
      if (item.type !== undefined) attrs.type = item.type;
      if (item.value !== undefined) attrs.value = item.value;
      attrs.action = item.action;
      attrs.order = String(item.order);
      return element(
        'item',
        NS.privacy,
        attrs,
        item.stanzas.map((s) => element(s, NS.privacy)),
      );
    });
    children.push(element('list', NS.privacy, { name: list.name }, items));
  }
  return element('query', NS.privacy, {}, children);
}
