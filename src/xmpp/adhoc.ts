/**
 * XEP-0050 ad-hoc commands: command sessions with their stages, actions and notes, and the
 * protocol errors. Each command is a small state machine; this file keeps its state between the
 * stages of one session and turns its answers into `<command/>` elements.
 */
import { randomBytes } from 'node:crypto';
import { StanzaError } from './connection.js';
import { renderForm, submittedValues, type Form } from './forms.js';
import { NS, x, type Stanza } from './ltx.js';

export type Action = 'execute' | 'next' | 'prev' | 'complete' | 'cancel';
const ACTIONS = new Set<string>(['execute', 'next', 'prev', 'complete', 'cancel']);

export interface Note {
  readonly type: 'info' | 'warn' | 'error';
  readonly text: string;
}

export interface Step<S> {
  readonly status: 'executing' | 'completed';
  readonly form?: Form;
  readonly notes?: readonly Note[];
  /** While executing: what the client may do next, the first being the default. */
  readonly actions?: readonly ('next' | 'complete')[];
  /** While executing: what the next stage needs to know. */
  readonly state?: S;
}

export interface CommandInput<S> {
  /** The requester's bare JID (already checked to be a user of a host served here). */
  readonly user: string;
  readonly action: Exclude<Action, 'cancel' | 'prev'>;
  /** What the client submitted in this request, by field var (empty without a form). */
  readonly values: ReadonlyMap<string, readonly string[]>;
  /** Undefined on the first request of a session. */
  readonly state: S | undefined;
}

export interface Command<S = unknown> {
  readonly node: string;
  readonly name: string;
  run(input: CommandInput<S>): Promise<Step<S>>;
}

/** RFC 6120 §8.3.3: the error type that goes with each condition used here. */
const ERROR_TYPES: Readonly<Record<string, string>> = { 'bad-request': 'modify', forbidden: 'auth', 'resource-constraint': 'wait' };

/** Thrown by a command for a request it cannot take (e.g. a stage it does not know). */
export class CommandError extends StanzaError {
  constructor(
    condition: string,
    readonly commandCondition?: 'bad-action' | 'bad-locale' | 'bad-payload' | 'bad-sessionid' | 'malformed-action' | 'session-expired',
    text?: string,
  ) {
    super(condition, ERROR_TYPES[condition] ?? 'cancel', text);
  }
}

interface Session {
  readonly node: string;
  readonly owner: string;
  state: unknown;
  expires: number;
}

/** An idle session is dropped after this long. */
const SESSION_TTL_MS = 30 * 60_000;
const MAX_SESSIONS = 10_000;

export class CommandRegistry {
  private readonly commands = new Map<string, Command>();
  private readonly sessions = new Map<string, Session>();

  add<S>(command: Command<S>): void {
    this.commands.set(command.node, command as Command);
  }

  list(): Command[] {
    return [...this.commands.values()];
  }

  get(node: string): Command | undefined {
    return this.commands.get(node);
  }

  /** Answers a `<command/>` request from `user` with the `<command/>` element of the reply. */
  async handle(user: string, request: Stanza, now = Date.now()): Promise<Stanza> {
    this.expire(now);
    const node = request.attrs.node ?? '';
    const command = this.commands.get(node);
    if (!command) throw new CommandError('item-not-found', undefined, `no command ${node}`);
    const rawAction = request.attrs.action ?? 'execute';
    if (!ACTIONS.has(rawAction)) throw new CommandError('bad-request', 'malformed-action');
    const action = rawAction as Action;
    const sessionId = request.attrs.sessionid;

    let session: Session | undefined;
    if (sessionId !== undefined) {
      session = this.sessions.get(sessionId);
      // Another user's session id is answered like an unknown one: ids must not be probeable.
      if (!session || session.node !== node || session.owner !== user) throw new CommandError('bad-request', 'bad-sessionid');
    } else if (action !== 'execute') {
      throw new CommandError('bad-request', 'bad-sessionid');
    }

    const id = sessionId ?? randomBytes(9).toString('base64url');
    if (action === 'cancel') {
      this.sessions.delete(id);
      return x('command', { xmlns: NS.commands, node, sessionid: id, status: 'canceled' });
    }
    if (action === 'prev') throw new CommandError('bad-request', 'bad-action', 'this command has no previous stage');

    const step = await command.run({ user, action, values: submittedValues(request), state: session?.state });
    if (step.status === 'executing') {
      if (!session && this.sessions.size >= MAX_SESSIONS) throw new CommandError('resource-constraint', undefined, 'too many command sessions');
      this.sessions.set(id, { node, owner: user, state: step.state, expires: now + SESSION_TTL_MS });
    } else {
      this.sessions.delete(id);
    }
    return renderStep(node, id, step);
  }

  private expire(now: number): void {
    for (const [id, session] of this.sessions) if (session.expires < now) this.sessions.delete(id);
  }
}

function renderStep<S>(node: string, sessionId: string, step: Step<S>): Stanza {
  const actions = step.status === 'executing' ? (step.actions ?? ['complete']) : [];
  return x(
    'command',
    { xmlns: NS.commands, node, sessionid: sessionId, status: step.status },
    actions.length > 0 &&
      x(
        'actions',
        { execute: actions[0] },
        actions.map((a) => x(a)),
      ),
    (step.notes ?? []).map((n) => x('note', { type: n.type }, n.text)),
    step.form && renderForm(step.form),
  );
}
