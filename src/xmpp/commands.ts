/**
 * The self-service commands a user runs from their own client:
 *
 * - "Export my account": a one-time download link (user token, export scope, this account,
 *   15 minutes) and the data kinds it holds; the form can leave out the message archive.
 * - "Import into my account": mode and password choice first; then a one-time *check* link (a
 *   dry run: the file is validated and counted, nothing is written); "Next" shows what the check
 *   found and gives the one-time import link; once the file is imported a message follows (and,
 *   where the server allows, the roster is pushed to the user's clients). Choosing "from another
 *   account" instead gives an import link for the old provider's "Move my account" command.
 * - "Import from another XMPP account": the old address and its password (a private field, used
 *   for this pull only: not kept in the command's session, a log or the audit line); xporta
 *   signs in there as the user and imports the old account into this one, archive included
 *   (src/core/pull-import.ts). The answer is the report, or a message once a long pull is done.
 * - "Move my account to another address": XEP-0283, see moved.ts.
 *
 * Every link carries its token in the query (`?token=`), so it works from a browser or `curl`.
 */
import type { ServiceContext } from '../core/context.js';
import type { Scope } from '../config/config.js';
import type { ApplyReport } from '../storage/backend.js';
import { refOf } from '../transfer/account-transfer.js';
import { DATA_KINDS, type DataKind } from '../records/model.js';
import type { Command, Note, Step } from './adhoc.js';
import { bool, single, type Field, type Form } from './forms.js';
import { MoveError, type MoveService, type MoveStatus } from '../core/move.js';
import { pullImport, type PullImportReport } from '../core/pull-import.js';
import { bareJid } from '../lib/jid.js';
import { summary } from './notify.js';

/** Lifetime of a link handed out by a command (capped by auth.userTokenMaxTtlSeconds). */
export const LINK_TTL_SECONDS = 15 * 60;
/** How long the move and pull commands wait for their work before answering and following up by message. */
const MOVE_ANSWER_DEADLINE_MS = 20_000;

export interface CommandDeps {
  readonly ctx: ServiceContext;
  readonly dryRunFor: (tokenId: string) => ApplyReport | undefined;
  readonly moves: () => MoveService;
  /** A follow-up message to the user; errors are the caller's to log. */
  readonly message: (jid: string, text: string) => Promise<void>;
  readonly log: { warn(obj: object, msg: string): void };
}

export interface Link {
  readonly url: string;
  readonly expiresAt: string;
  readonly tokenId: string;
}

/** A single-use link to `action` on the user's own account, the token in the query. */
export function userLink(ctx: ServiceContext, jid: string, action: 'export' | 'import', scope: Scope, query: Record<string, string>): Link {
  const ttlSeconds = Math.min(LINK_TTL_SECONDS, ctx.auth.maxTtlSeconds);
  const { token, claims } = ctx.auth.mintUserToken({ jid, scopes: [scope], ttlSeconds, singleUse: true });
  ctx.audit.record({ action: 'user-token-mint', actor: { kind: 'xmpp', jid }, outcome: 'ok', account: jid, target: claims.jti });
  const base = ctx.config.publicUrl.replace(/\/+$/, '');
  const params = new URLSearchParams({ ...query, token });
  return {
    url: `${base}/v1/users/${encodeURIComponent(jid)}/${action}?${params.toString()}`,
    expiresAt: new Date(claims.exp * 1000).toISOString(),
    tokenId: claims.jti,
  };
}

function hhmm(iso: string): string {
  return `${iso.slice(11, 16)} UTC`;
}

// ---------------------------------------------------------------------------------------------

interface ExportState {
  readonly stage: 'options';
}

export function exportCommand(deps: CommandDeps): Command<ExportState> {
  const { ctx } = deps;
  return {
    node: 'export',
    name: 'Export my account',
    async run({ user, values, state }): Promise<Step<ExportState>> {
      if (!state && values.size === 0) {
        return {
          status: 'executing',
          state: { stage: 'options' },
          actions: ['complete'],
          form: {
            type: 'form',
            title: 'Export my account',
            instructions: [
              'You get a link to download your whole account as one XEP-0227 file, which another server (or xporta there) can import.',
              `The link works once, for ${Math.round(Math.min(LINK_TTL_SECONDS, ctx.auth.maxTtlSeconds) / 60)} minutes, and only for this account. Keep it to yourself: the file holds your password's keys and your messages.`,
            ],
            fields: [{ var: 'include-archive', type: 'boolean', label: 'Include the message archive', values: ['1'] }],
          },
        };
      }
      if (!(await ctx.storage.userExists(refOf(user)))) return { status: 'completed', notes: [{ type: 'error', text: `There is no stored account ${user}.` }] };
      const includeArchive = bool(values, 'include-archive', true);
      const kinds = DATA_KINDS.filter((k) => ctx.storage.supportedKinds.has(k) && (includeArchive || k !== 'archive'));
      const link = userLink(ctx, user, 'export', 'export', includeArchive ? {} : { exclude: 'archive' });
      return {
        status: 'completed',
        notes: [{ type: 'info', text: `Download your account (one use, until ${hhmm(link.expiresAt)}): ${link.url}` }],
        form: {
          type: 'result',
          title: 'Your export link',
          fields: [
            { var: 'url', type: 'text-single', label: 'Download link (works once)', values: [link.url] },
            { var: 'expires', type: 'text-single', label: 'Valid until', values: [link.expiresAt] },
            { var: 'kinds', type: 'list-multi', label: 'What the file contains', values: kinds, options: kinds.map((k) => ({ value: k })) },
          ],
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------

type ImportState =
  | { readonly stage: 'options' }
  | { readonly stage: 'check'; readonly query: Record<string, string>; readonly checkTokenId: string };

const MODE_FIELD: Field = {
  var: 'mode',
  type: 'list-single',
  label: 'How to import',
  values: ['merge'],
  options: [
    { value: 'merge', label: 'Merge: add to what the account holds (the file wins on conflicts)' },
    { value: 'replace', label: 'Replace: what the file holds replaces that kind of data' },
  ],
};

export function importCommand(deps: CommandDeps): Command<ImportState> {
  const { ctx } = deps;
  return {
    node: 'import',
    name: 'Import into my account',
    async run({ user, values, state }): Promise<Step<ImportState>> {
      if (!state && values.size === 0) {
        return {
          status: 'executing',
          state: { stage: 'options' },
          actions: ['next'],
          form: {
            type: 'form',
            title: 'Import into my account',
            instructions: ['Bring data from a XEP-0227 file (an export from another server) into this account.'],
            fields: [
              {
                var: 'source',
                type: 'list-single',
                label: 'Where the data comes from',
                values: ['file'],
                options: [
                  { value: 'file', label: 'A file I upload (checked first, nothing changes until you confirm)' },
                  { value: 'account', label: 'My old account, at a provider that runs xporta (its "Move my account" command sends it)' },
                ],
              },
              MODE_FIELD,
              { var: 'password', type: 'boolean', label: "Also take over the file's password", values: ['0'] },
            ],
          },
        };
      }
      if (!state || state.stage === 'options') {
        const mode = single(values, 'mode') === 'replace' ? 'replace' : 'merge';
        if (single(values, 'source') === 'account') {
          // A move never sends credentials: this account keeps its own password.
          const link = userLink(ctx, user, 'import', 'import', { mode, exclude: 'credentials' });
          return {
            status: 'completed',
            notes: [
              {
                type: 'info',
                text:
                  `Paste this link into "Move my account to another address" at your old provider (one use, until ${hhmm(link.expiresAt)}). ` +
                  `Your old account's data then comes here (${mode}); you get a message when it has arrived: ${link.url}`,
              },
            ],
            form: linkResult('Your import link for a move', link),
          };
        }
        return checkStage(ctx, user, { mode, ...(bool(values, 'password', false) ? {} : { exclude: 'credentials' }) });
      }
      const report = deps.dryRunFor(state.checkTokenId);
      if (!report) {
        // The old link may be spent by an upload that failed (the upload's answer said why).
        const again = checkStage(ctx, user, state.query);
        return { ...again, notes: [{ type: 'warn', text: 'No checked upload has arrived yet (a failed upload spends its link: here is a new one).' }, ...(again.notes ?? [])] };
      }
      const link = userLink(ctx, user, 'import', 'import', state.query);
      const notes: Note[] = [
        { type: 'info', text: `The check found: ${summary(report)}.` },
        ...report.warnings.map((w): Note => ({ type: 'warn', text: w })),
        {
          type: 'info',
          text: `To import it (${state.query.mode}), upload the same file to this link (one use, until ${hhmm(link.expiresAt)}); a message tells you when it is done: ${link.url}`,
        },
      ];
      return { status: 'completed', notes, form: reportResult(report, link) };
    },
  };
}

/** A stage with a fresh one-time check (dry-run) link. */
function checkStage(ctx: ServiceContext, user: string, query: Record<string, string>): Step<ImportState> {
  const link = userLink(ctx, user, 'import', 'import', { ...query, dryRun: 'true' });
  return {
    status: 'executing',
    state: { stage: 'check', query, checkTokenId: link.tokenId },
    actions: ['next'],
    notes: [{ type: 'info', text: `Upload your file to this check link (one use, until ${hhmm(link.expiresAt)}), then press Next: ${link.url}` }],
    form: {
      type: 'form',
      title: 'Check the file first',
      instructions: [
        "Upload your XEP-0227 file to the check link with an HTTP PUT, e.g. curl -T alice.xml -H 'Content-Type: application/xml' '<link>'. Nothing is changed yet: xporta only reads the file and counts what it would import.",
        'Then press Next to see what it found and to get the link that imports it.',
      ],
      fields: [
        { var: 'check-url', type: 'text-single', label: 'Check link (works once)', values: [link.url] },
        { var: 'expires', type: 'text-single', label: 'Valid until', values: [link.expiresAt] },
      ],
    },
  };
}

function linkResult(title: string, link: Link): Form {
  return {
    type: 'result',
    title,
    fields: [
      { var: 'url', type: 'text-single', label: 'Link (works once)', values: [link.url] },
      { var: 'expires', type: 'text-single', label: 'Valid until', values: [link.expiresAt] },
    ],
  };
}

function reportResult(report: ApplyReport, link: Link): Form {
  const counts = (Object.entries(report.counts) as [DataKind, number][]).map(([k, n]) => `${k}: ${n}`);
  return {
    type: 'result',
    title: 'What the check found',
    fields: [
      { var: 'counts', type: 'text-multi', label: 'Records per kind', values: counts.length > 0 ? counts : ['(none)'] },
      { var: 'skipped', type: 'text-multi', label: 'Would be skipped', values: report.skipped.map((s) => `${s.kind}: ${s.reason}${s.detail ? ` (${s.detail})` : ''}`) },
      { var: 'warnings', type: 'text-multi', label: 'Warnings', values: [...report.warnings] },
      { var: 'url', type: 'text-single', label: 'Import link (works once)', values: [link.url] },
      { var: 'expires', type: 'text-single', label: 'Valid until', values: [link.expiresAt] },
    ],
  };
}

// ---------------------------------------------------------------------------------------------

interface PullState {
  readonly stage: 'details';
}

const PULL_FORM: Form = {
  type: 'form',
  title: 'Import from another XMPP account',
  instructions: [
    'xporta signs in to your old account on its server, as your client would, and copies it into this account: contacts, profile, bookmarks and other PEP data, blocked addresses and the whole message archive.',
    "Your old password is used for this copy only: it is not kept. This account keeps its own password; your old account's unread offline messages stay where they are.",
  ],
  fields: [
    { var: 'old-jid', type: 'jid-single', label: 'Old address', required: true },
    { var: 'password', type: 'text-private', label: 'Password of the old account', required: true },
    {
      var: 'mode',
      type: 'list-single',
      label: 'How to import',
      values: ['merge'],
      options: [
        { value: 'merge', label: 'Merge: add to what this account holds (the old account wins on conflicts)' },
        { value: 'replace', label: "Replace: the old account's data replaces that kind of data here" },
      ],
    },
  ],
};

function pullFormAgain(text: string): Step<PullState> {
  return { status: 'executing', state: { stage: 'details' }, actions: ['complete'], form: PULL_FORM, notes: [{ type: 'error', text }] };
}

function pullSummary(report: PullImportReport): string[] {
  const lines = [`Your old account ${report.source} was imported (${report.mode}): ${summary(report)}.`];
  if (report.refused.length > 0) lines.push(`The old server did not give: ${report.refused.join('; ')}.`);
  lines.push(...report.warnings);
  return lines;
}

export function pullCommand(deps: CommandDeps): Command<PullState> {
  const { ctx } = deps;
  return {
    node: 'pull',
    name: 'Import from another XMPP account',
    async run({ user, values, state }): Promise<Step<PullState>> {
      if (!state && values.size === 0) return { status: 'executing', state: { stage: 'details' }, actions: ['complete'], form: PULL_FORM };
      let source: string;
      try {
        source = bareJid(single(values, 'old-jid') ?? '');
        if (!source.includes('@')) throw new Error('no localpart');
      } catch {
        return pullFormAgain('Give your old address, e.g. alice@old.example.');
      }
      if (source === user) return pullFormAgain('The old address is this account itself.');
      // Not trimmed: a password may begin or end with spaces.
      const password = values.get('password')?.[0] ?? '';
      if (password === '') return pullFormAgain('Give the password of your old account.');
      const mode = single(values, 'mode') === 'replace' ? 'replace' : 'merge';
      const audited = { action: 'import' as const, actor: { kind: 'xmpp' as const, jid: user }, account: user, mode, dryRun: false, target: source };
      const work = pullImport(ctx, {
        jid: user,
        from: { jid: source, password },
        options: { mode, dryRun: false, include: new Set(DATA_KINDS), createAccount: false },
        source: 'xmpp',
        createHint: 'the account must exist on this server',
      }).then(
        (report) => {
          ctx.audit.record({ ...audited, outcome: 'ok' });
          return report;
        },
        (err: unknown) => {
          ctx.audit.record({ ...audited, outcome: 'failed', reason: err instanceof Error ? err.message : String(err) });
          throw err;
        },
      );
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), MOVE_ANSWER_DEADLINE_MS);
      });
      let outcome: PullImportReport | 'late';
      try {
        outcome = await Promise.race([work, late]);
      } catch (err) {
        return { status: 'completed', notes: [{ type: 'error', text: `Nothing was imported: ${err instanceof Error ? err.message : String(err)}` }] };
      } finally {
        clearTimeout(timer);
      }
      if (outcome === 'late') {
        work.then(
          (report) => deps.message(user, pullSummary(report).join('\n')),
          (err: unknown) => deps.message(user, `Nothing was imported from your old account: ${err instanceof Error ? err.message : String(err)}`),
        ).catch((err: unknown) => deps.log.warn({ err, jid: user }, 'could not send the import result'));
        return { status: 'completed', notes: [{ type: 'info', text: `Your old account ${source} is still being read; a message tells you when the import is done.` }] };
      }
      return { status: 'completed', notes: pullSummary(outcome).map((text): Note => ({ type: 'info', text })), form: pullResult(outcome) };
    },
  };
}

function pullResult(report: PullImportReport): Form {
  const counts = (Object.entries(report.counts) as [DataKind, number][]).map(([k, n]) => `${k}: ${n}`);
  return {
    type: 'result',
    title: 'Imported from your old account',
    fields: [
      { var: 'old-jid', type: 'jid-single', label: 'Old address', values: [report.source] },
      { var: 'counts', type: 'text-multi', label: 'Records per kind', values: counts.length > 0 ? counts : ['(none)'] },
      { var: 'refused', type: 'text-multi', label: 'Not given by the old server', values: [...report.refused] },
      { var: 'warnings', type: 'text-multi', label: 'Warnings', values: [...report.warnings] },
      ...(report.archiveTotal !== undefined ? [{ var: 'archive-total', type: 'text-single' as const, label: 'Messages in the old archive', values: [String(report.archiveTotal)] }] : []),
    ],
  };
}

// ---------------------------------------------------------------------------------------------

interface MoveState {
  readonly stage: 'details';
}

const MOVE_FORM: Form = {
  type: 'form',
  title: 'Move my account to another address',
  instructions: [
    'Your contacts are told (XEP-0283) that this account moved to the new address; a statement saying so is published on this account for them to check. This account is not deleted.',
    'To also copy your data, run "Import into my account" (from another account) on the new account first and paste the link it gives you.',
  ],
  fields: [
    { var: 'new-jid', type: 'jid-single', label: 'New address', required: true },
    { var: 'import-url', type: 'text-single', label: 'Import link of the new account (optional)' },
  ],
};

export function moveCommand(deps: CommandDeps): Command<MoveState> {
  return {
    node: 'move',
    name: 'Move my account to another address',
    async run({ user, values, state }): Promise<Step<MoveState>> {
      if (!state && values.size === 0) return { status: 'executing', state: { stage: 'details' }, actions: ['complete'], form: MOVE_FORM };
      const newJid = single(values, 'new-jid');
      if (newJid === undefined) {
        return { status: 'executing', state: { stage: 'details' }, actions: ['complete'], form: MOVE_FORM, notes: [{ type: 'error', text: 'Give the new address.' }] };
      }
      const importUrl = single(values, 'import-url');
      const work = deps.moves().move(user, newJid, importUrl);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), MOVE_ANSWER_DEADLINE_MS);
      });
      let outcome: MoveStatus | 'late';
      try {
        outcome = await Promise.race([work, late]);
      } catch (err) {
        if (err instanceof MoveError && (err.code === 'bad-request' || err.code === 'refused')) {
          return { status: 'executing', state: { stage: 'details' }, actions: ['complete'], form: MOVE_FORM, notes: [{ type: 'error', text: err.message }] };
        }
        if (err instanceof MoveError) return { status: 'completed', notes: [{ type: 'error', text: `The move did not happen: ${err.message}` }] };
        throw err;
      } finally {
        clearTimeout(timer);
      }
      if (outcome === 'late') {
        work.then(
          (status) => deps.message(user, moveSummary(status).join('\n')),
          (err: unknown) => deps.message(user, `The move did not happen: ${(err as Error).message}`),
        ).catch((err: unknown) => deps.log.warn({ err, jid: user }, 'could not send the move result'));
        return { status: 'completed', notes: [{ type: 'info', text: 'Your data is still being copied; a message tells you when the move is done.' }] };
      }
      return { status: 'completed', notes: moveSummary(outcome).map((text): Note => ({ type: 'info', text })), form: moveResult(outcome) };
    },
  };
}

export function moveSummary(status: MoveStatus): string[] {
  const lines = [`This account now says it moved to ${status.newJid}.`];
  if (status.statement.note) lines.push(status.statement.note);
  if (status.copied) lines.push(`Your data was copied there: ${summary(status.copied)}.`);
  if (status.steps.length > 0) {
    lines.push(
      `Now sign in as ${status.newJid} and ask your ${status.steps.length} contact(s) for a subscription with the moved notice (XEP-0283): ` +
        'a client that supports account moves does it for you. xporta cannot send presence in your name.',
    );
  } else if (status.contacts.length > 0) {
    lines.push('All your contacts have been asked already.');
  }
  lines.push('This account was not deleted.');
  return lines;
}

function moveResult(status: MoveStatus): Form {
  return {
    type: 'result',
    title: 'Account move',
    fields: [
      { var: 'old-jid', type: 'jid-single', label: 'Old address', values: [status.jid] },
      { var: 'new-jid', type: 'jid-single', label: 'New address', values: [status.newJid] },
      { var: 'statement', type: 'text-single', label: 'Moved statement', values: [status.statement.via === 'storage' ? 'written to storage' : 'published'] },
      { var: 'contacts', type: 'jid-multi', label: 'Contacts to ask from the new address', values: status.steps.map((s) => s.to) },
      { var: 'notification', type: 'text-multi', label: 'What to send to each of them', values: status.steps.slice(0, 1).map((s) => s.stanza) },
    ],
  };
}
