/**
 * XEP-0283 (Moved, urn:xmpp:moved:1): the old account publishes a "moved statement" naming the
 * new JID (PEP node `urn:xmpp:moved:1`, item `current`, presence access model, so contacts'
 * servers and clients can check it), and the new account asks each contact for a subscription
 * with `<moved><old-jid/></moved>` in it. Optionally the old account's data is first copied to
 * the new one through a one-time import link of the new provider's xporta.
 *
 * The statement goes through the server where it granted PEP access (XEP-0356 IQ permission for
 * the pubsub namespace), otherwise into storage. The subscription requests cannot go through the
 * component at all: XEP-0356 lets a privileged entity read and write rosters, send messages and
 * IQs in a user's name, and receive presence, but never send presence for a user. So they are
 * listed as steps for the new account's client, and their progress is read back from the new
 * account's roster. The old account is never deleted here.
 */
import { Readable } from 'node:stream';
import type { ServiceContext } from './context.js';
import { BusyError } from './errors.js';
import { importAccount } from './import-pipeline.js';
import { bareJid, JidError } from '../lib/jid.js';
import { OutgoingError, outgoingClient } from '../lib/net/outgoing.js';
import { MoveError } from './move-error.js';

export { MoveError };
import type { ApplyReport, UserRef } from '../storage/backend.js';
import { exportUserDocument, refOf, selectKinds } from '../transfer/account-transfer.js';
import { element, isDataKind, textOf, firstChild, type DataKind, type DocumentEvent, type RosterItem, type UserRecord, type XmlElement } from '../records/model.js';
import { escapeAttribute, escapeText } from '../xml/xml.js';
import { writeDocument } from '../xep0227/writer.js';

/** XEP-0283's namespace, also the PEP node of the statement. */
export const NS_MOVED = 'urn:xmpp:moved:1';
export const MOVED_NODE = NS_MOVED;
export const MOVED_ITEM = 'current';

/**
 * Per contact of the old account: `to-notify` (the new account has not asked yet), `requested`
 * (asked, no answer), `subscribed` (the contact accepted the new JID), `unknown` (the new account
 * is on another server, whose roster xporta cannot read).
 */
export type ContactState = 'to-notify' | 'requested' | 'subscribed' | 'unknown';

export interface MoveStep {
  /** Who has to send it: the new account, from its own client. */
  readonly from: string;
  readonly to: string;
  /** The presence to send, as XML. */
  readonly stanza: string;
}

export interface MoveStatus {
  readonly jid: string;
  readonly newJid: string;
  readonly statement: {
    readonly published: true;
    /** How it was published, when this answer did it: through the server, or into storage. */
    readonly via?: 'xep-0356' | 'storage';
    readonly note?: string;
  };
  /** What copying the data to the new account applied there, when an import link was given. */
  readonly copied?: ApplyReport;
  readonly contacts: readonly { readonly jid: string; readonly state: ContactState }[];
  /** Subscription requests the new account's client still has to send. */
  readonly steps: readonly MoveStep[];
}

const STORAGE_NOTE =
  'The statement was written to the server storage because the server grants no PEP access to xporta; ' +
  'the server may only serve it after a restart.';

/** The statement published on the old account. */
export function movedStatement(newJid: string): XmlElement {
  return element('moved', NS_MOVED, {}, [element('new-jid', NS_MOVED, {}, [newJid])]);
}

/** The `<moved><old-jid/></moved>` notice a subscription request from the new account carries. */
export function movedNotice(oldJid: string): XmlElement {
  return element('moved', NS_MOVED, {}, [element('old-jid', NS_MOVED, {}, [oldJid])]);
}

/** The subscription request the new account sends to each contact. */
export function movedNotification(to: string, oldJid: string): string {
  return `<presence type="subscribe" to="${escapeAttribute(to)}"><moved xmlns="${NS_MOVED}"><old-jid>${escapeText(oldJid)}</old-jid></moved></presence>`;
}

export class MoveService {
  /** The statement goes through the server when the context has privileged access registered, else into storage. */
  constructor(private readonly ctx: ServiceContext) {}

  /**
   * Moves `oldJid` (an account served here) to `rawNewJid`: copies the data when `importUrl` is
   * given, publishes the statement, and reports the contacts and the steps left.
   */
  async move(oldJid: string, rawNewJid: string, importUrl?: string): Promise<MoveStatus> {
    const newJid = parseNewJid(oldJid, rawNewJid);
    const ref = refOf(oldJid);
    if (!(await this.ctx.storage.userExists(ref))) throw new MoveError('not-found', `no account ${oldJid}`);
    const copied = importUrl !== undefined ? await this.copy(oldJid, importUrl) : undefined;
    const via = await this.publishStatement(oldJid, newJid);
    const progress = await this.progress(oldJid, newJid);
    return {
      ...progress,
      statement: { published: true, via, ...(via === 'storage' ? { note: STORAGE_NOTE } : {}) },
      ...(copied ? { copied } : {}),
    };
  }

  /** Progress of a move already made, or undefined when the account has published no statement. */
  async status(oldJid: string): Promise<MoveStatus | undefined> {
    const ref = refOf(oldJid);
    if (!(await this.ctx.storage.userExists(ref))) throw new MoveError('not-found', `no account ${oldJid}`);
    const newJid = await this.readStatement(ref);
    if (newJid === undefined) return undefined;
    return { ...(await this.progress(oldJid, newJid)), statement: { published: true } };
  }

  /** The new JID named by the stored statement. */
  async readStatement(ref: UserRef): Promise<string | undefined> {
    for await (const record of this.ctx.storage.readUser(ref, { include: new Set<DataKind>(['pep']) })) {
      if (record.kind === 'pep-item' && record.node === MOVED_NODE && record.id === MOVED_ITEM && record.payload) {
        const jid = firstChild(record.payload, 'new-jid', NS_MOVED);
        const text = jid ? textOf(jid).trim() : '';
        if (text !== '') return text;
      }
    }
    return undefined;
  }

  async publishStatement(oldJid: string, newJid: string): Promise<'xep-0356' | 'storage'> {
    const privileged = this.ctx.privileged;
    if (privileged?.canPublishPep(refOf(oldJid).host)) {
      try {
        await privileged.publishPep(oldJid, MOVED_NODE, MOVED_ITEM, movedStatement(newJid), 'presence');
      } catch (err) {
        throw new MoveError('upstream', `the XMPP server refused the moved statement: ${(err as Error).message}`);
      }
      return 'xep-0356';
    }
    await this.writeStatement(oldJid, newJid);
    return 'storage';
  }

  /** Writes the statement into storage, as an import (merge) of the two PEP records. */
  private async writeStatement(oldJid: string, newJid: string): Promise<void> {
    const ref = refOf(oldJid);
    const include = new Set<DataKind>(['pep']);
    const options = { mode: 'merge', dryRun: false, include, createAccount: false } as const;
    try {
      await importAccount(this.ctx, { jid: oldJid, source: 'move', options }, {
        apply: async () => {
          const account = await this.ctx.storage.readAccount(ref);
          if (!account) throw new MoveError('not-found', `no account ${oldJid}`);
          const records: UserRecord[] = [
            {
              kind: 'pep-node',
              node: MOVED_NODE,
              config: [{ var: 'pubsub#access_model', type: 'list-single', values: ['presence'] }],
              affiliations: [{ jid: oldJid, affiliation: 'owner' }],
              subscriptions: [],
            },
            { kind: 'pep-item', node: MOVED_NODE, id: MOVED_ITEM, payload: movedStatement(newJid), publisher: oldJid, published: new Date().toISOString() },
          ];
          return this.ctx.storage.applyUser(ref, account, Readable.from(records), options);
        },
      });
    } catch (err) {
      if (err instanceof BusyError) throw new MoveError('conflict', err.message);
      throw err;
    }
  }

  /**
   * The old account's contacts (those with a subscription either way) and how far each is in
   * accepting the new JID, read from the new account's roster when that account is served here.
   */
  async progress(oldJid: string, newJid: string): Promise<Omit<MoveStatus, 'statement' | 'copied'>> {
    const contacts = (await storedRoster(this.ctx, oldJid)).filter(
      (item) => item.subscription !== 'none' && item.subscription !== 'remove' && item.jid !== newJid && item.jid !== oldJid,
    );
    const newRef = refOf(newJid);
    const local = Object.hasOwn(this.ctx.config.hosts, newRef.host) && (await this.ctx.storage.userExists(newRef));
    const newRoster = local ? new Map((await storedRoster(this.ctx, newJid)).map((item) => [item.jid, item])) : undefined;
    const states = contacts.map((contact) => {
      let state: ContactState = 'unknown';
      if (newRoster) {
        const item = newRoster.get(contact.jid);
        if (item?.subscription === 'to' || item?.subscription === 'both') state = 'subscribed';
        else if (item?.ask === 'subscribe') state = 'requested';
        else state = 'to-notify';
      }
      return { jid: contact.jid, state };
    });
    return {
      jid: oldJid,
      newJid,
      contacts: states,
      steps: states
        .filter((c) => c.state === 'to-notify' || c.state === 'unknown')
        .map((c) => ({ from: newJid, to: c.jid, stanza: movedNotification(c.jid, oldJid) })),
    };
  }

  /**
   * Streams the old account to a one-time import link (`PUT …/import?token=…` of the new
   * provider's xporta, possibly this one) and returns the import report. What is sent is shaped
   * for a move: no credentials (the new account keeps its password), roster items without
   * subscription state (contacts have to accept the new JID first; a copied "both" would even make
   * the contacts' server answer the new subscription request by itself), no pending requests
   * addressed to the old JID, and no moved statement.
   */
  async copy(oldJid: string, importUrl: string): Promise<ApplyReport> {
    let url: URL;
    try {
      url = new URL(importUrl);
    } catch {
      throw new MoveError('bad-request', 'the import link must be an absolute http(s) URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new MoveError('bad-request', 'the import link must be an absolute http(s) URL');
    // The link's query holds its token: never repeat it in a message.
    const where = url.origin + url.pathname;
    const lease = await this.ctx.locks.tryAcquire(oldJid, 'shared');
    if (!lease) throw new MoveError('conflict', `an import into ${oldJid} is running`);
    const abort = new AbortController();
    const body = Readable.from(writeDocument(shapeForMove(exportUserDocument(this.ctx.storage, refOf(oldJid), selectKinds(undefined, 'credentials'), abort.signal))));
    const client = outgoingClient(this.ctx.config);
    try {
      const response = await client.request(url, {
        method: 'PUT',
        headers: { 'content-type': 'application/xml' },
        body,
        signal: abort.signal,
        answersAfterProcessing: true,
      });
      const report = copiedSummary(parseJson(await client.readAnswer(response)));
      if (!report) throw new OutgoingError('failed', `${where}: the answer is not an import report`);
      return report;
    } catch (err) {
      if (err instanceof OutgoingError) {
        // The text is fixed (see src/net/outgoing.ts); what happened stays in `cause`, for debug logs.
        throw new MoveError(err.reason === 'refused' ? 'refused' : 'upstream', `copying the data to ${where} failed: ${err.message}`, { cause: err });
      }
      throw err;
    } finally {
      abort.abort();
      body.destroy();
      lease.release();
    }
  }
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * The remote import report, reduced to what the move reports back and checked field by field:
 * counts of the kinds this version knows, whether the account was created. Free text (warnings, skipped
 * items) is left out, so nothing the remote wrote reaches the caller.
 */
export function copiedSummary(value: unknown): ApplyReport | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const report = value as Record<string, unknown>;
  if (typeof report.user !== 'string' || (report.mode !== 'merge' && report.mode !== 'replace')) return undefined;
  if (typeof report.dryRun !== 'boolean' || typeof report.created !== 'boolean') return undefined;
  if (typeof report.counts !== 'object' || report.counts === null || Array.isArray(report.counts)) return undefined;
  let user: string;
  try {
    user = bareJid(report.user);
  } catch {
    return undefined;
  }
  const counts: Partial<Record<DataKind, number>> = {};
  for (const [kind, n] of Object.entries(report.counts)) {
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return undefined;
    // A kind this version does not know (a newer peer's) is left out, not an error.
    if (isDataKind(kind)) counts[kind] = n;
  }
  const unsupported = Array.isArray(report.unsupported) ? report.unsupported.filter((k): k is DataKind => typeof k === 'string' && isDataKind(k)) : [];
  return { user, mode: report.mode, dryRun: report.dryRun, created: report.created, counts, skipped: [], unsupported, warnings: [] };
}

function parseNewJid(oldJid: string, raw: string): string {
  let newJid: string;
  try {
    newJid = bareJid(raw.trim());
  } catch (err) {
    if (err instanceof JidError) throw new MoveError('bad-request', `invalid new JID ${JSON.stringify(raw)}: ${err.reason}`);
    throw err;
  }
  if (!newJid.includes('@')) throw new MoveError('bad-request', `${JSON.stringify(raw)} is not a user JID (no localpart)`);
  if (newJid === oldJid) throw new MoveError('bad-request', 'the new JID is the account itself');
  return newJid;
}

async function* shapeForMove(events: AsyncIterable<DocumentEvent>): AsyncGenerator<DocumentEvent> {
  for await (const event of events) {
    switch (event.kind) {
      case 'user':
        yield { kind: 'user', name: event.name, scram: [], extraAttributes: {} };
        break;
      case 'roster':
        yield {
          kind: 'roster',
          items: event.items
            .filter((item) => item.subscription !== 'remove')
            .map((item) => ({ jid: item.jid, ...(item.name !== undefined ? { name: item.name } : {}), subscription: 'none' as const, groups: item.groups })),
        };
        break;
      case 'pending-subscription':
        break;
      case 'pep-node':
      case 'pep-item':
        if (event.node !== MOVED_NODE) yield event;
        break;
      default:
        yield event;
    }
  }
}

/** The roster as stored (what an import wrote, or what the server saved last). */
export async function storedRoster(ctx: Pick<ServiceContext, 'storage'>, jid: string): Promise<RosterItem[]> {
  const items: RosterItem[] = [];
  for await (const record of ctx.storage.readUser(refOf(jid), { include: new Set<DataKind>(['roster']) })) {
    if (record.kind === 'roster') items.push(...record.items);
  }
  return items;
}
