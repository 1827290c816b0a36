/**
 * PEP node options as ejabberd 23.01 keeps them (`pubsub_node_option`, one Erlang term per
 * option) ↔ XEP-0060 node configuration fields, and the `MegaSecs:Secs:MicroSecs` time stamps
 * of `pubsub_item`.
 */
import type { NodeConfigField, PubsubAffiliation, PubsubSubscriptionState } from '../../records/model.js';
import { atom, binary, formatTerm, integer, list, parseTerm, type ErlangTerm } from './erlang.js';

/**
 * What node_pep:options() gives a node created by publishing (observed on 23.01), so that a
 * node written here has every option ejabberd's own would have. `rsm` and `sql` are internal.
 */
export const DEFAULT_PEP_OPTIONS: readonly (readonly [string, ErlangTerm])[] = [
  ['access_model', atom('presence')],
  ['deliver_notifications', atom('true')],
  ['deliver_payloads', atom('true')],
  ['itemreply', atom('none')],
  ['max_items', integer(1)],
  ['max_payload_size', integer(250000)],
  ['notification_type', atom('headline')],
  ['notify_config', atom('false')],
  ['notify_delete', atom('false')],
  ['notify_retract', atom('false')],
  ['persist_items', atom('true')],
  ['presence_based_delivery', atom('true')],
  ['publish_model', atom('publishers')],
  ['purge_offline', atom('false')],
  ['roster_groups_allowed', list([])],
  ['rsm', atom('true')],
  ['send_last_published_item', atom('on_sub_and_presence')],
  ['sql', atom('true')],
  ['subscribe', atom('true')],
];

const INTERNAL_OPTIONS = new Set(['rsm', 'sql']);

type OptionKind = 'boolean' | 'integer' | 'max' | 'text' | 'text-list' | readonly string[];

/** Options ejabberd accepts in a node configuration, with the values it allows. */
const OPTION_KINDS: Readonly<Record<string, OptionKind>> = {
  access_model: ['open', 'presence', 'roster', 'authorize', 'whitelist'],
  publish_model: ['publishers', 'subscribers', 'open'],
  send_last_published_item: ['never', 'on_sub', 'on_sub_and_presence'],
  notification_type: ['normal', 'headline'],
  itemreply: ['owner', 'publisher', 'none'],
  deliver_notifications: 'boolean',
  deliver_payloads: 'boolean',
  notify_config: 'boolean',
  notify_delete: 'boolean',
  notify_retract: 'boolean',
  notify_sub: 'boolean',
  persist_items: 'boolean',
  presence_based_delivery: 'boolean',
  purge_offline: 'boolean',
  subscribe: 'boolean',
  max_items: 'max',
  max_payload_size: 'integer',
  title: 'text',
  description: 'text',
  type: 'text',
  roster_groups_allowed: 'text-list',
};

/** Stored option → config field; undefined for internal options. */
export function optionToField(name: string, value: string): NodeConfigField | undefined {
  if (INTERNAL_OPTIONS.has(name)) return undefined;
  const term = parseTerm(value);
  const field = `pubsub#${name}`;
  switch (term.type) {
    case 'atom':
      if (term.value === 'true' || term.value === 'false') return { var: field, type: 'boolean', values: [term.value === 'true' ? '1' : '0'] };
      return { var: field, values: [term.value] };
    case 'integer':
      return { var: field, values: [String(term.value)] };
    case 'binary':
      return { var: field, values: [term.value] };
    case 'list':
      return { var: field, type: 'list-multi', values: term.items.map((t) => (t.type === 'list' ? '' : String(t.value))) };
  }
}

/** Config field → stored option, or a reason it cannot be stored. */
export function fieldToOption(field: NodeConfigField): { name: string; value: string } | string {
  if (!field.var.startsWith('pubsub#')) return 'not a pubsub# field';
  const name = field.var.slice('pubsub#'.length);
  const kind = OPTION_KINDS[name];
  if (kind === undefined) return 'option not supported by ejabberd';
  const first = field.values[0] ?? '';
  let term: ErlangTerm;
  if (kind === 'boolean') {
    if (!['1', '0', 'true', 'false'].includes(first)) return `not a boolean: ${first}`;
    term = atom(first === '1' || first === 'true' ? 'true' : 'false');
  } else if (kind === 'integer' || kind === 'max') {
    if (kind === 'max' && first === 'max') term = atom('max');
    else if (/^\d+$/.test(first)) term = integer(Number(first));
    else return `not an integer: ${first}`;
  } else if (kind === 'text') {
    term = binary(first);
  } else if (kind === 'text-list') {
    term = list(field.values.map(binary));
  } else {
    if (!kind.includes(first)) return `value not supported by ejabberd: ${first}`;
    term = atom(first);
  }
  return { name, value: formatTerm(term) };
}

const AFFILIATION_CODES: Readonly<Record<PubsubAffiliation, string>> = {
  owner: 'o',
  publisher: 'p',
  'publish-only': 'u',
  member: 'm',
  none: 'n',
  outcast: 'c',
};

export function encodeAffiliation(a: PubsubAffiliation): string {
  return AFFILIATION_CODES[a];
}

export function decodeAffiliation(code: string): PubsubAffiliation {
  for (const [name, c] of Object.entries(AFFILIATION_CODES)) if (c === code) return name as PubsubAffiliation;
  return 'none';
}

const SUBSCRIPTION_CODES: Readonly<Record<PubsubSubscriptionState, string>> = {
  subscribed: 's',
  pending: 'p',
  unconfigured: 'u',
  none: 'n',
};

/** `s:subid,p:subid2` (node_flat_sql's encoding) → subscriptions. */
export function decodeSubscriptions(text: string): { subscription: PubsubSubscriptionState; subid?: string }[] {
  if (text === '') return [];
  return text.split(',').map((part) => {
    const [code = 'n', subid] = part.split(':', 2);
    let subscription: PubsubSubscriptionState = 'none';
    for (const [name, c] of Object.entries(SUBSCRIPTION_CODES)) if (c === code) subscription = name as PubsubSubscriptionState;
    return { subscription, ...(subid ? { subid } : {}) };
  });
}

export function encodeSubscriptions(subs: readonly { subscription: PubsubSubscriptionState; subid?: string }[]): string {
  return subs.map((s) => `${SUBSCRIPTION_CODES[s.subscription]}:${s.subid ?? ''}`).join(',');
}

/** `001795:460022:730442` → ISO 8601. */
export function erlangNowToIso(text: string): string | undefined {
  const m = /^(\d+):(\d+):(\d+)$/.exec(text);
  if (!m) return undefined;
  const micro = (Number(m[1]) * 1e6 + Number(m[2])) * 1e6 + Number(m[3]);
  return microsToIso(micro);
}

export function microsToErlangNow(micros: number): string {
  const pad = (n: number): string => String(n).padStart(6, '0');
  const secs = Math.floor(micros / 1e6);
  return `${pad(Math.floor(secs / 1e6))}:${pad(secs % 1e6)}:${pad(micros % 1e6)}`;
}

const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const DAY_MS = 86_400_000;
/** The last day's `YYYY-MM-DDT`: an archive's times come in order, so most share it with the one before. */
let dayNumber = Number.NaN;
let dayPrefix = '';

/** µs since the epoch → ISO 8601 with microseconds when there are any. */
export function microsToIso(micros: number): string {
  // Runs once per archived message: integral times from 1970 to 9999 are formatted here.
  if (Number.isSafeInteger(micros) && micros >= 0 && micros < 253_402_300_800_000_000) {
    const ms = Math.floor(micros / 1000);
    const day = Math.floor(ms / DAY_MS);
    if (day !== dayNumber) {
      dayPrefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
      dayNumber = day;
    }
    let t = ms - day * DAY_MS;
    const hours = Math.floor(t / 3_600_000);
    t -= hours * 3_600_000;
    const minutes = Math.floor(t / 60_000);
    t -= minutes * 60_000;
    const seconds = Math.floor(t / 1000);
    const rest = micros % 1000;
    const fraction = THREE_DIGITS[t - seconds * 1000] as string;
    return `${dayPrefix}${TWO_DIGITS[hours]}:${TWO_DIGITS[minutes]}:${TWO_DIGITS[seconds]}.${fraction}${rest === 0 ? '' : THREE_DIGITS[rest]}Z`;
  }
  const ms = Math.floor(micros / 1000);
  const iso = new Date(ms).toISOString();
  const rest = micros % 1000;
  return rest === 0 ? iso : `${iso.slice(0, -1)}${String(rest).padStart(3, '0')}Z`;
}

/** ISO 8601 (any precision) → µs since the epoch. */
export function isoToMicros(iso: string): number | undefined {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return undefined;
  const frac = /\.(\d+)/.exec(iso)?.[1] ?? '';
  const extra = frac.length > 3 ? Number(frac.slice(3, 6).padEnd(3, '0')) : 0;
  return ms * 1000 + extra;
}
