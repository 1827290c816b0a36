/**
 * PEP (mod_pep.lua, util/pubsub.lua): the `pep` map store holds one record per node
 * `{name, config, affiliations = {[jid] = affiliation}, subscribers = {[jid] = true | options}}`;
 * each node's items are the archive store `pep_<node>` (key = item id, when = publish time,
 * with = publisher's bare JID or "" when the server published, value = the payload).
 *
 * `config` holds only what was set for the node (the service's node_defaults fill in the rest), in
 * util/pubsub's names; the form vars are those of mod_pubsub/pubsub.lib.lua's node_config form.
 * `_defaults_only` (set by mod_vcard_legacy on nodes it auto-creates) and other `_` keys are
 * Prosody internals, not configuration: they are not exported, and a node created by import simply
 * holds the configuration it was given.
 */
import type { SkippedItem } from '../backend.js';
import type { NodeConfigField, PepItemRecord, PepNodeRecord, PubsubAffiliation, PubsubSubscriptionState } from '../../records/model.js';
import type { ProsodyVersion } from './accounts.js';
import type { ArchiveItem } from './archive.js';
import { LuaFloat, LuaTable, isStanzaValue, luaNumberToString, type LuaValue } from './lua.js';
import { fromPreserialized } from './stanza.js';
import { storedBareJid } from '../../lib/jid.js';
import { compareStrings, isoToSeconds, nowSeconds, secondsToIso } from './util.js';

export const PEP_STORE = 'pep';
export const PEP_ITEMS_PREFIX = 'pep_';

export function pepItemsStore(node: string): string {
  return `${PEP_ITEMS_PREFIX}${node}`;
}

type FieldKind = 'text' | 'boolean' | 'list' | 'max' | 'multi';

interface ConfigField {
  readonly key: string;
  readonly var: string;
  readonly type: string;
  readonly kind: FieldKind;
}

/** pubsub.lib.lua `node_config_form`, in form order. */
export const NODE_CONFIG_FIELDS: readonly ConfigField[] = [
  { key: 'title', var: 'pubsub#title', type: 'text-single', kind: 'text' },
  { key: 'description', var: 'pubsub#description', type: 'text-single', kind: 'text' },
  { key: 'payload_type', var: 'pubsub#type', type: 'text-single', kind: 'text' },
  { key: 'max_items', var: 'pubsub#max_items', type: 'text-single', kind: 'max' },
  { key: 'persist_items', var: 'pubsub#persist_items', type: 'boolean', kind: 'boolean' },
  { key: 'access_model', var: 'pubsub#access_model', type: 'list-single', kind: 'list' },
  // Prosody 13: the groups the `roster` access model lets in, a list even with one group.
  { key: 'roster_groups_allowed', var: 'pubsub#roster_groups_allowed', type: 'list-multi', kind: 'multi' },
  { key: 'publish_model', var: 'pubsub#publish_model', type: 'list-single', kind: 'list' },
  { key: 'send_last_published_item', var: 'pubsub#send_last_published_item', type: 'list-single', kind: 'list' },
  { key: 'notify_items', var: 'pubsub#deliver_notifications', type: 'boolean', kind: 'boolean' },
  { key: 'include_payload', var: 'pubsub#deliver_payloads', type: 'boolean', kind: 'boolean' },
  { key: 'notification_type', var: 'pubsub#notification_type', type: 'list-single', kind: 'list' },
  { key: 'notify_delete', var: 'pubsub#notify_delete', type: 'boolean', kind: 'boolean' },
  { key: 'notify_retract', var: 'pubsub#notify_retract', type: 'boolean', kind: 'boolean' },
];

const BY_KEY = new Map(NODE_CONFIG_FIELDS.map((f) => [f.key, f]));
const BY_VAR = new Map(NODE_CONFIG_FIELDS.map((f) => [f.var, f]));

/** mod_pep's check_node_config accepts only these; 13 adds `roster`. */
const PEP_ACCESS_MODELS: Readonly<Record<ProsodyVersion, ReadonlySet<string>>> = {
  '0.12': new Set(['open', 'presence', 'whitelist']),
  '13': new Set(['open', 'presence', 'roster', 'whitelist']),
};
const AFFILIATIONS = new Set<string>(['owner', 'publisher', 'publish-only', 'member', 'none', 'outcast']);

/** util/dataforms.lua's rendering of a value: booleans `1`/`0`, numbers `%d`. */
function formValues(value: LuaValue): string[] | undefined {
  if (typeof value === 'string') return [value];
  if (typeof value === 'boolean') return [value ? '1' : '0'];
  if (typeof value === 'number' || value instanceof LuaFloat) return [luaNumberToString(value)];
  if (value instanceof LuaTable) return value.array.filter((v): v is string => typeof v === 'string');
  return undefined;
}

function configFromStore(config: LuaValue | undefined): NodeConfigField[] {
  if (!(config instanceof LuaTable)) return [];
  const known: NodeConfigField[] = [];
  const unknown: NodeConfigField[] = [];
  for (const [key, value] of config.hash) {
    if (key.startsWith('_')) continue;
    const values = formValues(value);
    if (!values) continue;
    const field = BY_KEY.get(key);
    if (field) known.push({ var: field.var, type: field.type, values });
    else unknown.push({ var: `pubsub#${key}`, ...(typeof value === 'boolean' ? { type: 'boolean' } : {}), values });
  }
  const order = (f: NodeConfigField): number => NODE_CONFIG_FIELDS.findIndex((c) => c.var === f.var);
  known.sort((a, b) => order(a) - order(b));
  unknown.sort((a, b) => compareStrings(a.var, b.var));
  return [...known, ...unknown];
}

export function pepNodeFromStore(node: string, value: LuaValue): PepNodeRecord {
  // COMPAT in mod_pep: a node record used to be just `true` (persist_items).
  const table = value instanceof LuaTable ? value : new LuaTable();
  const affiliations: { jid: string; affiliation: PubsubAffiliation }[] = [];
  const affTable = table.get('affiliations');
  if (affTable instanceof LuaTable) {
    for (const [jid, aff] of affTable.hash) {
      if (typeof aff === 'string' && AFFILIATIONS.has(aff)) affiliations.push({ jid, affiliation: aff as PubsubAffiliation });
    }
  }
  affiliations.sort((a, b) => compareStrings(a.jid, b.jid));
  const subscriptions: { jid: string; subscription: PubsubSubscriptionState }[] = [];
  const subTable = table.get('subscribers');
  if (subTable instanceof LuaTable) {
    for (const [jid, sub] of subTable.hash) if (sub !== false) subscriptions.push({ jid, subscription: 'subscribed' });
  }
  subscriptions.sort((a, b) => compareStrings(a.jid, b.jid));
  return { kind: 'pep-node', node, config: configFromStore(table.get('config')), affiliations, subscriptions };
}

function parseBoolean(value: string | undefined): boolean | undefined {
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  return undefined;
}

function configValue(field: NodeConfigField, skipped: SkippedItem[], node: string, version: ProsodyVersion): [string, LuaValue] | undefined {
  const skip = (reason: string): undefined => {
    // A field without a value holds nothing that could be lost: no line in the report.
    if (field.values.some((v) => v !== '')) skipped.push({ kind: 'pep', reason, detail: `${node} ${field.var}` });
    return undefined;
  };
  const known = BY_VAR.get(field.var);
  const first = field.values[0];
  if (!known) {
    if (!field.var.startsWith('pubsub#')) return skip('not a pubsub node option');
    const key = field.var.slice('pubsub#'.length);
    if (key === '' || key.startsWith('_')) return skip('not a pubsub node option');
    if (field.type === 'boolean') {
      const b = parseBoolean(first);
      return b === undefined ? skip('invalid boolean') : [key, b];
    }
    if (field.values.length > 1 || field.type?.endsWith('-multi')) return [key, LuaTable.of({}, field.values)];
    return first === undefined ? undefined : [key, first];
  }
  if (known.kind === 'multi') return [known.key, LuaTable.of({}, field.values.filter((v) => v !== ''))];
  if (first === undefined || first === '') return undefined;
  switch (known.kind) {
    case 'boolean': {
      const b = parseBoolean(first);
      return b === undefined ? skip('invalid boolean') : [known.key, b];
    }
    case 'max':
      if (first === 'max') return [known.key, 'max'];
      if (/^\d{1,9}$/.test(first)) return [known.key, Number(first)];
      return skip('invalid max_items');
    case 'list':
      if (known.key === 'access_model' && !PEP_ACCESS_MODELS[version].has(first)) {
        // The most restrictive model Prosody's PEP has, rather than a more open one.
        skipped.push({ kind: 'pep', reason: `access model ${first} is not supported by Prosody ${version} PEP; whitelist used`, detail: node });
        return [known.key, 'whitelist'];
      }
      return [known.key, first];
    case 'text':
      return [known.key, first];
  }
}

/** `version`: the target's generation, which decides the access models it takes. Default 0.12. */
export function pepNodeToStore(record: PepNodeRecord, skipped: SkippedItem[], version: ProsodyVersion = '0.12'): LuaTable {
  const config = new LuaTable();
  for (const field of record.config) {
    if (field.var === 'FORM_TYPE') continue;
    const entry = configValue(field, skipped, record.node, version);
    if (entry) config.set(entry[0], entry[1]);
  }
  const affiliations = new LuaTable();
  for (const { jid, affiliation } of record.affiliations) {
    // util/pubsub removes an affiliation set to none.
    if (affiliation !== 'none') affiliations.set(jid, affiliation);
  }
  const subscribers = new LuaTable();
  for (const { jid, subscription } of record.subscriptions) {
    if (subscription === 'subscribed') subscribers.set(jid, true);
    else skipped.push({ kind: 'pep', reason: `Prosody has no ${subscription} subscriptions`, detail: `${record.node} ${jid}` });
  }
  return LuaTable.of({ name: record.node, config, subscribers, affiliations });
}

/** The node record Prosody would create when the owner publishes to a node that does not exist. */
export function defaultPepNode(node: string, ownerJid: string): LuaTable {
  return LuaTable.of({
    name: node,
    config: new LuaTable(),
    subscribers: new LuaTable(),
    affiliations: LuaTable.of({ [ownerJid]: 'owner' }),
  });
}

/**
 * The node record mod_vcard_legacy's publish creates (util/pubsub `create` with the server as
 * actor): its node_defaults as the configuration, no affiliations.
 */
export function vcardLegacyPepNode(node: string): LuaTable {
  return LuaTable.of({
    name: node,
    config: LuaTable.of({ access_model: 'open', _defaults_only: true }),
    subscribers: new LuaTable(),
    affiliations: new LuaTable(),
  });
}

export function pepItemFromArchive(node: string, item: ArchiveItem): PepItemRecord {
  const payload = isStanzaValue(item.value) ? item.value : item.value instanceof LuaTable ? fromPreserialized(item.value, '') : null;
  return {
    kind: 'pep-item',
    node,
    id: item.key,
    payload,
    ...(item.with !== '' ? { publisher: item.with } : {}),
    // when = 0 is what Prosody's own XEP-0227 import writes: no time known.
    ...(item.when > 0 ? { published: secondsToIso(item.when) } : {}),
  };
}

/** The archive item for a PEP item, or why Prosody cannot store it. */
export function pepItemToArchive(record: PepItemRecord): ArchiveItem | string {
  if (record.payload === null) return 'Prosody stores no item without a payload';
  if (record.id === '') return 'item without id';
  let when = nowSeconds();
  if (record.published !== undefined) {
    const parsed = isoToSeconds(record.published);
    if (parsed === undefined) return `invalid publish time ${JSON.stringify(record.published)}`;
    when = parsed;
  }
  return { key: record.id, when, with: record.publisher !== undefined ? storedBareJid(record.publisher) : '', value: record.payload };
}
