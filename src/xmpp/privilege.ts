/**
 * XEP-0356 permissions as the server advertised them. Prosody's mod_privilege sends one
 * `<privilege/>` message per VirtualHost right after the handshake (and again after every
 * reconnect), so permissions are kept per host and forgotten when the connection drops.
 *
 * mod_privilege (prosody-modules 2023) never closes its `<namespace/>` elements, so the IQ
 * namespaces arrive nested inside each other: they are collected from all descendants.
 */
import { descendants, NS, type Stanza } from './ltx.js';

export type Access = 'get' | 'set' | 'both';

export interface HostPermissions {
  readonly roster?: Access;
  readonly message?: 'outgoing';
  readonly presence?: 'managed_entity' | 'roster';
  /** Namespace of a privileged IQ's payload → what is allowed. */
  readonly iq: ReadonlyMap<string, Access>;
}

const ACCESS = new Set<string>(['get', 'set', 'both']);

function allows(access: Access | undefined, type: 'get' | 'set'): boolean {
  return access === 'both' || access === type;
}

/** The permissions in one `<privilege/>` message, or undefined when it carries none. */
export function parsePrivilege(message: Stanza): HostPermissions | undefined {
  const privilege = message.getChild('privilege', NS.privilege) ?? message.getChild('privilege', NS.privilegeLegacy);
  if (!privilege) return undefined;
  let roster: Access | undefined;
  let messagePerm: 'outgoing' | undefined;
  let presence: 'managed_entity' | 'roster' | undefined;
  const iq = new Map<string, Access>();
  for (const perm of descendants(privilege, 'perm')) {
    const type = perm.attrs.type;
    switch (perm.attrs.access) {
      case 'roster':
        if (type !== undefined && ACCESS.has(type)) roster = type as Access;
        break;
      case 'message':
        if (type === 'outgoing') messagePerm = 'outgoing';
        break;
      case 'presence':
        if (type === 'managed_entity' || type === 'roster') presence = type;
        break;
      case 'iq':
        for (const ns of descendants(perm, 'namespace')) {
          const nsType = ns.attrs.type;
          if (ns.attrs.ns && nsType !== undefined && ACCESS.has(nsType)) iq.set(ns.attrs.ns, nsType as Access);
        }
        break;
    }
  }
  return {
    ...(roster ? { roster } : {}),
    ...(messagePerm ? { message: messagePerm } : {}),
    ...(presence ? { presence } : {}),
    iq,
  };
}

export class PrivilegeTable {
  private readonly byHost = new Map<string, HostPermissions>();

  /** Records an advertisement; returns the host it was for, or undefined if it was none. */
  accept(message: Stanza): string | undefined {
    const perms = parsePrivilege(message);
    const host = message.attrs.from?.toLowerCase();
    if (!perms || !host || host.includes('@') || host.includes('/')) return undefined;
    this.byHost.set(host, perms);
    return host;
  }

  clear(): void {
    this.byHost.clear();
  }

  get(host: string): HostPermissions | undefined {
    return this.byHost.get(host);
  }

  hosts(): string[] {
    return [...this.byHost.keys()];
  }

  roster(host: string, type: 'get' | 'set'): boolean {
    return allows(this.byHost.get(host)?.roster, type);
  }

  iq(host: string, namespace: string, type: 'get' | 'set'): boolean {
    return allows(this.byHost.get(host)?.iq.get(namespace), type);
  }
}
