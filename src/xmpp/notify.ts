/**
 * After an import, the server's running sessions still hold what they loaded before: Prosody
 * keeps a live copy of an online user's roster (and a cache of recently used ones) and writes
 * parts of that stale copy back on the next roster change. Where the server granted roster
 * access (XEP-0356), the live roster is brought in line item by item, which also makes the server
 * push every change to the user's clients; otherwise the user gets a message saying what changed
 * and that clients should reconnect.
 */
import type { ImportFinished, ServiceContext } from '../core/context.js';
import type { ApplyReport } from '../storage/backend.js';
import { refOf } from '../transfer/account-transfer.js';
import type { DataKind } from '../records/model.js';
import { storedRoster } from '../core/move.js';
import type { LogSink } from './connection.js';
import type { PrivilegedAccess, RosterEntry } from './privileged.js';
import { x, type Stanza } from './ltx.js';

export interface NotifierDeps {
  readonly ctx: ServiceContext;
  readonly privileged: PrivilegedAccess;
  /** Sends a stanza from the component; throws while disconnected. */
  readonly send: (stanza: Stanza) => Promise<void>;
  readonly online: () => boolean;
  readonly log: LogSink;
}

export type NotifyOutcome =
  | { readonly kind: 'roster-synced'; readonly changes: number }
  | { readonly kind: 'messaged' }
  | { readonly kind: 'queued' }
  | { readonly kind: 'skipped'; readonly reason: string };

/** Dry-run results are kept this long for the import command to show. */
const DRY_RUN_TTL_MS = 30 * 60_000;
/** Imports that finished while the component was offline, handled on reconnect. */
const MAX_QUEUED = 1000;

const KIND_LABELS: Readonly<Record<DataKind, string>> = {
  credentials: 'password',
  roster: 'contacts',
  vcard: 'profile (vCard)',
  private: 'private XML storage',
  pep: 'PEP items (bookmarks, avatar, …)',
  archive: 'archived messages',
  offline: 'offline messages',
  blocklist: 'block list',
  privacy: 'privacy lists',
  other: 'other data',
};

export class ImportNotifier {
  private readonly dryRuns = new Map<string, { readonly report: ApplyReport; readonly at: number }>();
  private readonly queued = new Map<string, ImportFinished>();
  /** Work in flight, so tests and shutdown can wait for it. */
  private readonly running = new Set<Promise<unknown>>();

  constructor(private readonly deps: NotifierDeps) {}

  importFinished(event: ImportFinished): void {
    // A move's statement is the move command's own answer, not data the user has to reload.
    if (event.source === 'move') return;
    if (event.report.dryRun) {
      this.rememberDryRun(event);
      return;
    }
    const work = this.notify(event).catch((err: unknown) => {
      this.deps.log.warn({ err, jid: event.jid }, 'could not tell the user about an import');
    });
    this.running.add(work);
    void work.finally(() => this.running.delete(work));
  }

  /** The dry-run report an upload with this token id produced, if one arrived. */
  dryRunFor(tokenId: string): ApplyReport | undefined {
    return this.dryRuns.get(tokenId)?.report;
  }

  /** Resolves once every notification started so far is done. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Handles what piled up while the component was offline. */
  flushQueued(): void {
    const events = [...this.queued.values()];
    this.queued.clear();
    for (const event of events) this.importFinished(event);
  }

  async notify(event: ImportFinished): Promise<NotifyOutcome> {
    const { jid, report } = event;
    const host = refOf(jid).host;
    if (!Object.hasOwn(this.deps.ctx.config.hosts, host)) return { kind: 'skipped', reason: `${host} is not served here` };
    if (!this.deps.online()) {
      if (this.queued.size < MAX_QUEUED || this.queued.has(jid)) this.queued.set(jid, event);
      return { kind: 'queued' };
    }
    if (this.deps.privileged.canSetRoster(host)) {
      const changes = await this.syncRoster(jid);
      // The roster is live now; anything else still needs a reconnect to be seen.
      const rest = changedKinds(report).filter((k) => k !== 'roster' && k !== 'credentials');
      await this.message(jid, noticeText(report, rest, true));
      this.deps.log.info({ jid, rosterChanges: changes }, 'roster pushed to the user after an import');
      return { kind: 'roster-synced', changes };
    }
    await this.message(jid, noticeText(report, changedKinds(report), false));
    return { kind: 'messaged' };
  }

  /**
   * Makes the server's roster for `jid` equal to the stored one, one privileged roster set per
   * differing item; returns the number of items set or removed.
   */
  async syncRoster(jid: string): Promise<number> {
    const host = refOf(jid).host;
    const stored = await storedRoster(this.deps.ctx, jid);
    // Without "get" we cannot tell what the server holds: set everything, remove nothing.
    const live = this.deps.privileged.canGetRoster(host) ? await this.deps.privileged.getRoster(jid) : undefined;
    const liveByJid = new Map((live ?? []).map((item) => [item.jid, item]));
    let changes = 0;
    const storedJids = new Set<string>();
    for (const item of stored) {
      if (item.subscription === 'remove' || item.jid === jid) continue;
      storedJids.add(item.jid);
      const wanted: RosterEntry = {
        jid: item.jid,
        ...(item.name !== undefined ? { name: item.name } : {}),
        subscription: item.subscription,
        groups: item.groups,
      };
      const current = liveByJid.get(item.jid);
      if (current && sameItem(current, wanted)) continue;
      await this.deps.privileged.setRosterItem(jid, wanted);
      changes++;
    }
    for (const item of live ?? []) {
      if (storedJids.has(item.jid)) continue;
      await this.deps.privileged.setRosterItem(jid, { jid: item.jid, remove: true });
      changes++;
    }
    return changes;
  }

  /**
   * A headline from the component: servers deliver those to the user's online clients only and
   * neither store them offline nor archive them, which is right for "reconnect now".
   */
  async message(jid: string, text: string): Promise<void> {
    await this.deps.send(x('message', { to: jid, type: 'headline' }, x('subject', {}, 'Your account data changed'), x('body', {}, text)));
  }

  private rememberDryRun(event: ImportFinished): void {
    if (event.principal?.kind !== 'user') return;
    const now = Date.now();
    for (const [id, entry] of this.dryRuns) if (entry.at < now - DRY_RUN_TTL_MS) this.dryRuns.delete(id);
    this.dryRuns.set(event.principal.jti, { report: event.report, at: now });
  }
}

function sameItem(a: RosterEntry, b: RosterEntry): boolean {
  if (a.subscription !== b.subscription || (a.name ?? '') !== (b.name ?? '')) return false;
  const ga = [...a.groups].sort();
  const gb = [...b.groups].sort();
  return ga.length === gb.length && ga.every((g, i) => g === gb[i]);
}

export function changedKinds(report: ApplyReport): DataKind[] {
  return (Object.entries(report.counts) as [DataKind, number][]).filter(([, n]) => n > 0).map(([k]) => k);
}

/** One short paragraph: what came in, and what the user has to do. */
export function summary(report: ApplyReport): string {
  const counts = (Object.entries(report.counts) as [DataKind, number][])
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${KIND_LABELS[kind]}: ${n}`);
  const parts = [counts.length > 0 ? counts.join(', ') : 'nothing'];
  if (report.skipped.length > 0) parts.push(`${report.skipped.length} item(s) skipped`);
  if (report.unsupported.length > 0) parts.push(`not storable here: ${report.unsupported.map((k) => KIND_LABELS[k]).join(', ')}`);
  return parts.join('; ');
}

function noticeText(report: ApplyReport, kinds: readonly DataKind[], rosterLive: boolean): string {
  const lines = [`An import (${report.mode}) into your account finished: ${summary(report)}.`];
  if (rosterLive) {
    lines.push('Your contact list has been updated in your connected clients.');
    if (kinds.length > 0) lines.push(`To see the rest (${kinds.map((k) => KIND_LABELS[k]).join(', ')}), disconnect all your clients and connect again.`);
  } else {
    lines.push(
      'Your connected clients still show the old data. Disconnect all of them now and connect again; ' +
        'until then a change to your contacts made from a client could overwrite the imported ones.',
    );
  }
  for (const warning of report.warnings) lines.push(`Note: ${warning}`);
  return lines.join('\n');
}
