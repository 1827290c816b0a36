/**
 * A remote-to-remote transfer: xporta logs in to the old account and to the new one as their
 * user (client protocol, the passwords the user gives), reads the old account (pullAccount) and
 * writes into the new one what the client protocol allows (storage/xmpp-client/writer.ts).
 * Neither account is in storage xporta serves, so nothing is atomic here: the report says what
 * was written, what either server refused and what could not be carried at all.
 *
 * With `move`, the transfer ends with a XEP-0283 move: the moved statement is published on the
 * old account (PEP node urn:xmpp:moved:1, item `current`, presence access model), then the new
 * account sends each contact of the old roster a subscription request carrying
 * `<moved><old-jid/></moved>`: the statement first, so that contacts verifying the request find it.
 *
 * The archive stays behind (it is counted for the report, not read); its MAM preferences are
 * copied. Both logins happen before anything is read or written: a wrong password for either
 * account fails the transfer with nothing changed on either side. The passwords live in the request only.
 */
import type { Config } from '../config/config.js';
import { bareJid, JidError } from '../lib/jid.js';
import { dataKindOf, type DataKind, type DocumentEvent, type UserRecord } from '../records/model.js';
import {
  archiveNotCarried,
  archiveSize,
  ClientStream,
  contactsOf,
  copyMamPreferences,
  publishOwnPep,
  pullAccount,
  pullSettings,
  pushRecords,
  sendSubscriptionRequests,
  UNREADABLE_KINDS,
  XmppPullError,
  XmppStanzaError,
  type PushReport,
} from '../storage/xmpp-client/index.js';
import { BusyError } from './errors.js';
import type { Slots } from './locks.js';
import { MOVED_ITEM, MOVED_NODE, MoveError, movedNotice, movedStatement } from './move.js';

export interface RemoteCredentials {
  readonly jid: string;
  /** For this transfer's session only. */
  readonly password: string;
}

export interface RemoteTransferRequest {
  readonly from: RemoteCredentials;
  readonly to: RemoteCredentials;
  /** Kinds to carry; those the client protocol cannot read are left out. */
  readonly include: ReadonlySet<DataKind>;
  /** Publish the moved statement and send the subscription requests (XEP-0283). */
  readonly move: boolean;
  readonly signal?: AbortSignal;
}

export interface RemoteTransferReport {
  readonly from: string;
  readonly to: string;
  /** Items written into the new account, per kind. */
  readonly written: PushReport['written'];
  /** What each server refused, one line each; never a secret. */
  readonly refused: { readonly source: readonly string[]; readonly destination: readonly string[] };
  /** What the client protocol cannot carry, with counts. */
  readonly notCarried: readonly string[];
  readonly warnings: readonly string[];
  /** The MAM preferences copied to the new account (its `default`), when there were any. */
  readonly mamPreferences?: { readonly default: string };
  /** The archive size the old server announced, when it did. */
  readonly archiveTotal?: number;
  /** With `move`: the statement published on the old account and the contacts asked. */
  readonly moved?: { readonly statement: { readonly node: string; readonly item: string; readonly newJid: string }; readonly notified: readonly string[] };
}

type ClientConfig = Pick<Config, 'outgoing' | 'xmppClient'>;

function userJid(raw: string, which: 'from' | 'to'): string {
  let jid: string;
  try {
    jid = bareJid(raw.trim());
  } catch (err) {
    if (err instanceof JidError) throw new MoveError('bad-request', `${which}.jid is not a valid JID: ${err.reason}`);
    throw err;
  }
  if (!jid.includes('@')) throw new MoveError('bad-request', `${which}.jid must be a user JID (user@domain)`);
  return jid;
}

/** Logs in to one side; a failure names the side, so the user knows which password was wrong. */
async function login(config: ClientConfig, jid: string, password: string, side: 'old' | 'new', signal?: AbortSignal): Promise<ClientStream> {
  try {
    return await ClientStream.open({ ...pullSettings(config, jid), jid, password, ...(signal ? { signal } : {}) });
  } catch (err) {
    if (err instanceof XmppPullError) throw new XmppPullError(err.code, `the ${side} account: ${err.detail ?? jid}`, { cause: err });
    throw err;
  }
}

const isUserRecord = (e: DocumentEvent): e is UserRecord => !['host', 'host-end', 'user', 'user-end'].includes(e.kind);

/**
 * Runs one transfer. With `slots` (the service's import slots), it takes one for its duration,
 * so transfers count against `limits.maxConcurrentImports` as imports do; none free is a
 * {@link BusyError}.
 */
export async function transferRemote(config: ClientConfig, request: RemoteTransferRequest, slots?: Slots): Promise<RemoteTransferReport> {
  const from = userJid(request.from.jid, 'from');
  const to = userJid(request.to.jid, 'to');
  if (from === to) throw new MoveError('bad-request', 'from and to are the same account');
  const slot = slots?.tryTake();
  if (slots && !slot) throw new BusyError('import-slots', 'too many imports and transfers are running; try again later');
  try {
    return await run(config, request, from, to);
  } finally {
    slot?.release();
  }
}

async function run(config: ClientConfig, request: RemoteTransferRequest, from: string, to: string): Promise<RemoteTransferReport> {
  const include = new Set([...request.include].filter((k) => !UNREADABLE_KINDS.has(k)));
  const { signal } = request;

  const destination = await login(config, to, request.to.password, 'new', signal);
  let old: ClientStream | undefined;
  try {
    old = await login(config, from, request.from.password, 'old', signal);
    // The archive cannot be written into a remote account: it is counted, not read.
    const archiveLeft = include.delete('archive');
    const archiveTotal = archiveLeft ? await archiveSize(old) : undefined;
    // Its preferences, though, a client may set.
    const prefs = archiveLeft ? await copyMamPreferences(old, destination) : undefined;
    // A move needs the old roster (its contacts) even when roster items are not carried.
    const read = request.move ? new Set([...include, 'roster' as const]) : include;
    const pull = pullAccount({ ...pullSettings(config, from), jid: from, password: request.from.password, include: read, session: old, ...(signal ? { signal } : {}) });
    let contacts: string[] = [];
    async function* carried(): AsyncGenerator<UserRecord> {
      for await (const event of pull.events) {
        if (!isUserRecord(event)) continue;
        if (event.kind === 'roster') contacts = contactsOf(event.items, from, to);
        if (include.has(dataKindOf(event))) yield event;
      }
    }
    const pushed = await pushRecords(destination, to, carried());
    let moved: RemoteTransferReport['moved'];
    if (request.move) {
      try {
        await publishOwnPep(old, MOVED_NODE, MOVED_ITEM, movedStatement(to), 'presence');
      } catch (err) {
        if (err instanceof XmppStanzaError) throw new MoveError('upstream', `the old server refused the moved statement: ${err.condition}`);
        throw err;
      }
      await sendSubscriptionRequests(destination, contacts, [movedNotice(from)]);
      moved = { statement: { node: MOVED_NODE, item: MOVED_ITEM, newJid: to }, notified: contacts };
    }
    return {
      from,
      to,
      written: pushed.written,
      refused: { source: pull.notes.refused, destination: prefs?.refused !== undefined ? [...pushed.refused, prefs.refused] : pushed.refused },
      notCarried: archiveLeft ? [archiveNotCarried(archiveTotal), ...pushed.notCarried] : pushed.notCarried,
      warnings: pull.notes.warnings,
      ...(prefs?.set !== undefined ? { mamPreferences: { default: prefs.set } } : {}),
      ...(archiveTotal !== undefined ? { archiveTotal } : {}),
      ...(moved ? { moved } : {}),
    };
  } finally {
    await Promise.allSettled([destination.close(), old?.close()]);
  }
}
