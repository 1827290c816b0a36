/**
 * The XEP-0114 component as a whole: connection, XEP-0356 permissions, service discovery, the
 * ad-hoc commands, and the after-import notices. It uses the same ServiceContext as the HTTP
 * routes (storage, tokens, locks, metrics) and nothing of HTTP itself; the other faces see it only
 * through the capabilities it registers in the context (`notifier`, `privileged`) and the
 * `connected()` status.
 */
import type { Config } from '../config/config.js';
import type { AccountNotifier, ImportFinished, ServiceContext } from '../core/context.js';
import { bareJid } from '../lib/jid.js';
import { refOf } from '../transfer/account-transfer.js';
import { CommandError, CommandRegistry } from './adhoc.js';
import { exportCommand, importCommand, moveCommand, pullCommand, type CommandDeps } from './commands.js';
import { ComponentConnection, StanzaError, type BackoffOptions, type ConnectionState, type LogSink } from './connection.js';
import { MoveService } from '../core/move.js';
import { ImportNotifier } from './notify.js';
import { PrivilegeTable } from './privilege.js';
import { PrivilegedAccess } from './privileged.js';
import { firstElement, NS, x, type Stanza } from './ltx.js';

export interface XmppComponentOptions {
  /** Uses `component` (service, domain, secret) and `hosts` (whose users may use it). */
  readonly config: Config;
  readonly log: LogSink;
  readonly backoff?: BackoffOptions;
  readonly connectTimeoutMs?: number;
}

/** Privilege advertisements arrive right after the handshake; queued work waits this long for them. */
const SETTLE_AFTER_CONNECT_MS = 1000;

export class XmppComponent implements AccountNotifier {
  readonly connection: ComponentConnection;
  readonly permissions = new PrivilegeTable();
  readonly privileged: PrivilegedAccess;
  readonly commands = new CommandRegistry();
  private context: ServiceContext | undefined;
  private notifier: ImportNotifier | undefined;
  private readonly log: LogSink;

  constructor(private readonly options: XmppComponentOptions) {
    const { component } = options.config;
    if (component.secret === undefined) throw new Error('component.secret is required to connect the component');
    this.log = options.log;
    this.connection = new ComponentConnection({
      service: component.service,
      domain: component.domain,
      secret: component.secret,
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      log: options.log,
      onStanza: (stanza) => this.onStanza(stanza),
      onStateChange: (state) => this.onState(state),
    });
    this.privileged = new PrivilegedAccess(this.connection, this.permissions);
  }

  get domain(): string {
    return this.options.config.component.domain;
  }

  /** For /health (ComponentStatus). */
  connected(): boolean {
    return this.connection.online;
  }

  /** Attaches to the service (as its notifier) and starts connecting in the background. */
  start(ctx: ServiceContext): void {
    this.context = ctx;
    // What the other faces may use of the component, registered as the core's capabilities.
    ctx.notifier = this;
    ctx.privileged = this.privileged;
    this.notifier = new ImportNotifier({
      ctx,
      privileged: this.privileged,
      send: (stanza) => this.connection.send(stanza),
      online: () => this.connection.online,
      log: this.log,
    });
    const deps: CommandDeps = {
      ctx,
      dryRunFor: (tokenId) => this.notifier?.dryRunFor(tokenId),
      moves: () => this.moves(),
      message: (jid, text) => this.notifier?.message(jid, text) ?? Promise.resolve(),
      log: this.log,
    };
    this.commands.add(exportCommand(deps));
    this.commands.add(importCommand(deps));
    this.commands.add(pullCommand(deps));
    this.commands.add(moveCommand(deps));
    ctx.metrics.set('xporta_component_connected', 0);
    this.connection.start();
  }

  async stop(): Promise<void> {
    await this.connection.stop();
    await this.notifier?.idle();
  }

  importFinished(event: ImportFinished): void {
    this.notifier?.importFinished(event);
  }

  /** Resolves once notifications started so far are done (tests). */
  async idle(): Promise<void> {
    await this.notifier?.idle();
  }

  moves(): MoveService {
    if (!this.context) throw new Error('the component is not started');
    return new MoveService(this.context);
  }

  private onState(state: ConnectionState): void {
    this.context?.metrics.set('xporta_component_connected', state === 'online' ? 1 : 0);
    if (state !== 'online') {
      // A new connection gets new advertisements; the old ones may no longer hold.
      this.permissions.clear();
      return;
    }
    setTimeout(() => this.notifier?.flushQueued(), SETTLE_AFTER_CONNECT_MS).unref();
  }

  private onStanza(stanza: Stanza): void {
    if (stanza.name === 'message') {
      const from = stanza.attrs.from ?? '';
      // Only the servers we serve may grant us anything.
      if (Object.hasOwn(this.options.config.hosts, from)) {
        const host = this.permissions.accept(stanza);
        if (host) this.log.info({ host, permissions: describe(this.permissions, host) }, 'XEP-0356 permissions granted');
      }
      return;
    }
    const type = stanza.attrs.type;
    if (stanza.name === 'iq' && (type === 'get' || type === 'set')) void this.onIq(stanza);
    // Presence (subscriptions to the component, forwarded presence) needs no answer.
  }

  private async onIq(iq: Stanza): Promise<void> {
    let reply: Stanza;
    try {
      const payload = await this.answer(iq);
      reply = x('iq', { type: 'result', to: iq.attrs.from, id: iq.attrs.id }, payload);
    } catch (err) {
      if (!(err instanceof StanzaError)) this.log.error({ err }, 'XMPP request failed');
      reply = errorReply(iq, err instanceof StanzaError ? err : new StanzaError('internal-server-error', 'wait'));
    }
    try {
      await this.connection.send(reply);
    } catch {
      // Disconnected meanwhile: the client's request times out, which is what it would see anyway.
    }
  }

  private async answer(iq: Stanza): Promise<Stanza | undefined> {
    const user = this.userOf(iq.attrs.from ?? '');
    if (!user) throw new StanzaError('forbidden', 'auth', 'this service is only for users of the hosts it serves');
    const payload = firstElement(iq);
    if (!payload) throw new StanzaError('bad-request', 'modify');
    const type = iq.attrs.type;
    if (type === 'get' && payload.is('ping', NS.ping)) return undefined;
    if (type === 'get' && payload.is('query', NS.discoInfo)) return this.discoInfo(payload.attrs.node);
    if (type === 'get' && payload.is('query', NS.discoItems)) return this.discoItems(payload.attrs.node);
    if (type === 'set' && payload.is('command', NS.commands)) return this.commands.handle(user, payload);
    throw new StanzaError('service-unavailable');
  }

  /** The requester's bare JID when it is a user of a host served here. */
  private userOf(from: string): string | undefined {
    let bare: string;
    try {
      bare = bareJid(from);
    } catch {
      return undefined;
    }
    if (!bare.includes('@')) return undefined;
    return Object.hasOwn(this.options.config.hosts, refOf(bare).host) ? bare : undefined;
  }

  private discoInfo(node: string | undefined): Stanza {
    const query = (...children: Stanza[]): Stanza => x('query', { xmlns: NS.discoInfo, node }, ...children);
    const feature = (v: string): Stanza => x('feature', { var: v });
    if (node === undefined) {
      return query(
        x('identity', { category: 'component', type: 'generic', name: 'xporta: account export, import and move' }),
        ...[NS.discoInfo, NS.discoItems, NS.commands, NS.dataForms, NS.ping].map(feature),
      );
    }
    if (node === NS.commands) return query(x('identity', { category: 'automation', type: 'command-list', name: 'Commands' }));
    const command = this.commands.get(node);
    if (!command) throw new StanzaError('item-not-found');
    return query(x('identity', { category: 'automation', type: 'command-node', name: command.name }), feature(NS.commands), feature(NS.dataForms));
  }

  private discoItems(node: string | undefined): Stanza {
    if (node === undefined) {
      return x('query', { xmlns: NS.discoItems }, x('item', { jid: this.domain, node: NS.commands, name: 'Commands' }));
    }
    if (node === NS.commands) {
      return x(
        'query',
        { xmlns: NS.discoItems, node },
        this.commands.list().map((c) => x('item', { jid: this.domain, node: c.node, name: c.name })),
      );
    }
    if (!this.commands.get(node)) throw new StanzaError('item-not-found');
    return x('query', { xmlns: NS.discoItems, node });
  }
}

function errorReply(iq: Stanza, err: StanzaError): Stanza {
  return x(
    'iq',
    { type: 'error', to: iq.attrs.from, id: iq.attrs.id },
    x(
      'error',
      { type: err.errorType },
      x(err.condition, { xmlns: NS.stanzas }),
      err.text !== undefined && x('text', { xmlns: NS.stanzas }, err.text),
      err instanceof CommandError && err.commandCondition !== undefined && x(err.commandCondition, { xmlns: NS.commands }),
    ),
  );
}

function describe(table: PrivilegeTable, host: string): Record<string, string> {
  const perms = table.get(host);
  const out: Record<string, string> = {};
  if (perms?.roster) out.roster = perms.roster;
  if (perms?.message) out.message = perms.message;
  if (perms?.presence) out.presence = perms.presence;
  for (const [ns, access] of perms?.iq ?? []) out[`iq:${ns}`] = access;
  return out;
}
