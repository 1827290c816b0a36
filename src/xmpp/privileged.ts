/**
 * What the component may do to a user's data through the server (XEP-0356): read and write the
 * roster (the server then pushes changes to the user's clients itself) and send IQs in the
 * user's name, e.g. a PEP publish. Every call checks the advertised permission first and throws
 * {@link NotGrantedError} instead of sending something the server would refuse.
 *
 * An answer of error type "wait" is retried a few times (see {@link WAIT_RETRY_PAUSES_MS}). Prosody
 * on SQLite answers so ("Unable to save roster") when its COMMIT met a reader's lock, xporta's
 * own reads included: it has no busy handler, and it keeps that transaction open, holding a lock
 * that stops every other reader of the database, until its next SQL transaction. Sending the
 * request again is that next transaction: it commits both and frees the readers. Every privileged
 * IQ xporta sends reads, or sets a state (a roster item, a PEP item by id), so sending it twice
 * does no harm.
 */
import type { PrivilegedAccess as CorePrivilegedAccess } from '../core/context.js';
import type { XmlElement } from '../records/model.js';
import type { ComponentConnection } from './connection.js';
import { StanzaError } from './connection.js';
import type { PrivilegeTable } from './privilege.js';
import { fromModel, NS, x, type Stanza } from './ltx.js';

export class NotGrantedError extends Error {
  constructor(what: string, host: string) {
    super(`the server has not granted ${what} on ${host} (XEP-0356)`);
    this.name = 'NotGrantedError';
  }
}

export interface RosterEntry {
  readonly jid: string;
  readonly name?: string;
  readonly subscription: 'none' | 'to' | 'from' | 'both';
  readonly ask?: 'subscribe';
  readonly groups: readonly string[];
}

/** XEP-0060 publish-options fields; names without `#` get the `pubsub#` prefix. */
export type PublishOptions = Readonly<Record<string, string>>;

function hostOf(bareJid: string): string {
  return bareJid.slice(bareJid.indexOf('@') + 1);
}

/** Pauses before sending again a request the server answered with an error of type "wait". */
const WAIT_RETRY_PAUSES_MS = [200, 500, 1000];

/** The server asked to try again later; our own timeout (no answer at all) is not retried. */
function asksToWait(err: unknown): boolean {
  return err instanceof StanzaError && err.errorType === 'wait' && err.condition !== 'remote-server-timeout';
}

export class PrivilegedAccess implements CorePrivilegedAccess {
  constructor(
    private readonly connection: ComponentConnection,
    private readonly permissions: PrivilegeTable,
  ) {}

  get online(): boolean {
    return this.connection.online;
  }

  canGetRoster(host: string): boolean {
    return this.online && this.permissions.roster(host, 'get');
  }

  canSetRoster(host: string): boolean {
    return this.online && this.permissions.roster(host, 'set');
  }

  canIq(host: string, namespace: string, type: 'get' | 'set'): boolean {
    return this.online && this.permissions.iq(host, namespace, type);
  }

  /** The roster as the server holds it now (for a user who is online: the live copy). */
  async getRoster(user: string): Promise<RosterEntry[]> {
    if (!this.canGetRoster(hostOf(user))) throw new NotGrantedError('roster get', hostOf(user));
    const result = await this.request(() => x('iq', { type: 'get', to: user }, x('query', { xmlns: NS.roster })));
    return (result.getChild('query', NS.roster)?.getChildren('item') ?? []).map(parseRosterItem);
  }

  /**
   * Sets or removes one roster item. One item per IQ: mod_privilege answers once per item, so
   * a multi-item set would get several replies to one id.
   */
  async setRosterItem(user: string, item: RosterEntry | { readonly jid: string; readonly remove: true }): Promise<void> {
    if (!this.canSetRoster(hostOf(user))) throw new NotGrantedError('roster set', hostOf(user));
    const element =
      'remove' in item
        ? x('item', { jid: item.jid, subscription: 'remove' })
        : x('item', { jid: item.jid, name: item.name, subscription: item.subscription }, item.groups.map((g) => x('group', {}, g)));
    await this.request(() => x('iq', { type: 'set', to: user }, x('query', { xmlns: NS.roster }, element)));
  }

  /**
   * Sends `payload` in an IQ from `user` to `to` (default: the user's own bare JID) and returns
   * the answering IQ; an error answer throws {@link StanzaError}.
   */
  async iqAs(user: string, type: 'get' | 'set', payload: Stanza, to: string = user): Promise<Stanza> {
    const namespace = payload.attrs.xmlns ?? '';
    if (!this.canIq(hostOf(user), namespace, type)) throw new NotGrantedError(`IQ ${type} for ${namespace}`, hostOf(user));
    const wrapped = (): Stanza => {
      const inner = x('iq', { xmlns: NS.client, type, to, id: `w${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}` }, payload);
      return x('iq', { type, to: user }, x('privileged_iq', { xmlns: NS.privilege }, inner));
    };
    const result = await this.request(wrapped);
    const answer = result.getChild('privilege', NS.privilege)?.getChild('forwarded', NS.forward)?.getChild('iq');
    if (!answer) throw new StanzaError('undefined-condition', 'cancel', 'the privileged IQ answer holds no forwarded IQ');
    if (answer.attrs.type === 'error') throw StanzaError.fromStanza(answer);
    return answer;
  }

  canPublishPep(host: string): boolean {
    return this.canIq(host, NS.pubsub, 'set');
  }

  /**
   * The core's publish (see its PrivilegedAccess): an existing node with another access model
   * refuses the publish options, so such a node is reconfigured first where the server allows.
   */
  async publishPep(user: string, node: string, itemId: string, payload: XmlElement, accessModel: string): Promise<void> {
    try {
      await this.publishPepItem(user, node, itemId, fromModel(payload), { access_model: accessModel });
    } catch (err) {
      if (!(err instanceof StanzaError && err.condition === 'precondition-not-met') || !this.canIq(hostOf(user), `${NS.pubsub}#owner`, 'set')) throw err;
      await this.iqAs(user, 'set', nodeConfiguration(node, { 'pubsub#access_model': accessModel }));
      await this.publishPepItem(user, node, itemId, fromModel(payload), { access_model: accessModel });
    }
  }

  /** Publishes one PEP item in the user's name, creating or configuring the node as asked. */
  async publishPepItem(user: string, node: string, itemId: string, payload: Stanza, options: PublishOptions = {}): Promise<void> {
    const fields = Object.entries(options);
    const pubsub = x(
      'pubsub',
      { xmlns: NS.pubsub },
      x('publish', { node }, x('item', { id: itemId }, payload)),
      fields.length > 0 &&
        x(
          'publish-options',
          {},
          x(
            'x',
            { xmlns: NS.dataForms, type: 'submit' },
            x('field', { var: 'FORM_TYPE', type: 'hidden' }, x('value', {}, `${NS.pubsub}#publish-options`)),
            fields.map(([name, value]) => x('field', { var: name.includes('#') ? name : `pubsub#${name}` }, x('value', {}, value))),
          ),
        ),
    );
    await this.iqAs(user, 'set', pubsub);
  }

  /** Sends the IQ `build` makes (a fresh one, with a new id, each time), again while the server asks to wait. */
  private async request(build: () => Stanza): Promise<Stanza> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.connection.request(build());
      } catch (err) {
        const pause = WAIT_RETRY_PAUSES_MS[attempt];
        if (pause === undefined || !asksToWait(err)) throw err;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }
}

function parseRosterItem(item: Stanza): RosterEntry {
  const sub = item.attrs.subscription;
  return {
    jid: item.attrs.jid ?? '',
    ...(item.attrs.name ? { name: item.attrs.name } : {}),
    subscription: sub === 'to' || sub === 'from' || sub === 'both' ? sub : 'none',
    ...(item.attrs.ask === 'subscribe' ? { ask: 'subscribe' as const } : {}),
    groups: item.getChildren('group').map((g) => g.getText()),
  };
}

function nodeConfiguration(node: string, fields: Readonly<Record<string, string>>): Stanza {
  return x(
    'pubsub',
    { xmlns: `${NS.pubsub}#owner` },
    x(
      'configure',
      { node },
      x(
        'x',
        { xmlns: NS.dataForms, type: 'submit' },
        x('field', { var: 'FORM_TYPE', type: 'hidden' }, x('value', {}, `${NS.pubsub}#node_config`)),
        Object.entries(fields).map(([name, value]) => x('field', { var: name }, x('value', {}, value))),
      ),
    ),
  );
}
