/**
 * Renders the Lua config file for a test Prosody. Kept free of I/O so the exact text can be
 * inspected (and printed on failure) without starting anything.
 */
import { luaString } from '../../bench/lua-string.js';

export type ProsodyStorageKind = 'sqlite' | 'postgres' | 'mysql' | 'internal';

/** The `sql = {…}` table as Prosody's mod_storage_sql reads it. */
export interface ProsodySqlParams {
  readonly driver: 'SQLite3' | 'PostgreSQL' | 'MySQL';
  /** Database name, or the absolute file path for SQLite3. */
  readonly database: string;
  readonly host?: string;
  readonly port?: number;
  readonly username?: string;
  readonly password?: string;
}

export type RosterPrivilege = 'none' | 'get' | 'set' | 'both';
export type MessagePrivilege = 'none' | 'outgoing';
export type PresencePrivilege = 'none' | 'managed_entity' | 'roster';
export type IqPrivilege = 'get' | 'set' | 'both';

/** XEP-0356 permissions, in mod_privilege's (prosody-modules, urn:xmpp:privilege:2) terms. */
export interface PrivilegeConfig {
  readonly roster?: RosterPrivilege;
  readonly message?: MessagePrivilege;
  readonly presence?: PresencePrivilege;
  /** Namespace of the wrapped IQ's payload → permission. */
  readonly iq?: Readonly<Record<string, IqPrivilege>>;
}

/**
 * The privileged IQ namespaces a component doing account export/import needs. mod_privilege
 * matches the namespace of the wrapped IQ's first child, so pubsub and pubsub#owner are separate.
 */
export const DEFAULT_PRIVILEGE: PrivilegeConfig = {
  roster: 'both',
  message: 'outgoing',
  presence: 'roster',
  iq: {
    'vcard-temp': 'both',
    'jabber:iq:private': 'both',
    'urn:xmpp:blocking': 'both',
    'http://jabber.org/protocol/pubsub': 'both',
    'http://jabber.org/protocol/pubsub#owner': 'both',
  },
};

export const DEFAULT_MODULES: readonly string[] = [
  'roster',
  'saslauth',
  'disco',
  'vcard_legacy',
  'vcard4',
  'private',
  'pep',
  'bookmarks',
  'blocklist',
  'mam',
  'offline',
  'admin_adhoc',
  'ping',
  'register',
  'carbons',
  // Lets `prosodyctl shell` reach the running server (e.g. to reload a module after writing
  // storage behind its back, which matters for MAM's in-process item-count cache).
  'admin_shell',
];

export interface ProsodyConfigInput {
  readonly dataDir: string;
  readonly pidFile: string;
  readonly logFile: string;
  readonly certsDir: string;
  readonly logLevel: 'debug' | 'info';
  readonly c2sPort: number;
  readonly componentPort: number;
  readonly httpPort?: number;
  readonly hosts: readonly string[];
  readonly component: { readonly jid: string; readonly secret: string };
  readonly storage: ProsodyStorageKind;
  readonly sql?: ProsodySqlParams;
  /** Prosody generation; 13 needs mod_posix named when run in the foreground. Default 0.12. */
  readonly version?: '0.12' | '13';
  readonly passwordHash: 'SHA-1' | 'SHA-256';
  readonly privilege?: PrivilegeConfig;
  readonly extraModules?: readonly string[];
  /** Raw Lua appended to the global section, for options a single test needs. */
  readonly extraGlobalConfig?: string;
}

function luaList(values: readonly (string | number)[]): string {
  return `{ ${values.map((v) => (typeof v === 'number' ? String(v) : luaString(v))).join(', ')} }`;
}

function luaSqlTable(sql: ProsodySqlParams): string {
  const fields: string[] = [`driver = ${luaString(sql.driver)}`, `database = ${luaString(sql.database)}`];
  if (sql.host !== undefined) fields.push(`host = ${luaString(sql.host)}`);
  if (sql.port !== undefined) fields.push(`port = ${sql.port}`);
  if (sql.username !== undefined) fields.push(`username = ${luaString(sql.username)}`);
  if (sql.password !== undefined) fields.push(`password = ${luaString(sql.password)}`);
  return `{ ${fields.join('; ')} }`;
}

function luaPrivilege(component: string, p: PrivilegeConfig): string {
  const fields: string[] = [];
  if (p.roster) fields.push(`roster = ${luaString(p.roster)}`);
  if (p.message) fields.push(`message = ${luaString(p.message)}`);
  if (p.presence) fields.push(`presence = ${luaString(p.presence)}`);
  if (p.iq && Object.keys(p.iq).length > 0) {
    const iq = Object.entries(p.iq).map(([ns, perm]) => `[${luaString(ns)}] = ${luaString(perm)}`);
    fields.push(`iq = { ${iq.join('; ')} }`);
  }
  return `privileged_entities = {\n  [${luaString(component)}] = { ${fields.join('; ')} };\n}`;
}

export function renderProsodyConfig(c: ProsodyConfigInput): string {
  const modules = [...DEFAULT_MODULES, ...(c.extraModules ?? [])];
  // 13 loads mod_posix (which handles run_as_root and the pidfile prosodyctl reads) only when
  // it is listed, when run in the foreground as here.
  if (c.version === '13') modules.push('posix');
  if (c.privilege) modules.push('privilege');
  if (c.httpPort !== undefined) modules.push('http');

  const lines: string[] = [
    '-- Written by xporta test/support/prosody.ts; one throw-away server per test file.',
    // Tests and CI run as root; without this mod_posix refuses to start and prosodyctl
    // tries to setuid to the `prosody` user, which cannot read this temp dir.
    'run_as_root = true',
    `pidfile = ${luaString(c.pidFile)}`,
    `data_path = ${luaString(c.dataDir)}`,
    // An empty dir keeps certmanager from logging an error about the default `certs` dir.
    `certificates = ${luaString(c.certsDir)}`,
    `log = { { levels = { min = ${luaString(c.logLevel)} }, to = "file", filename = ${luaString(c.logFile)} } }`,
    `interfaces = ${luaList(['127.0.0.1'])}`,
    `c2s_ports = ${luaList([c.c2sPort])}`,
    'c2s_direct_tls_ports = {}',
    'legacy_ssl_ports = {}',
    `component_ports = ${luaList([c.componentPort])}`,
    `component_interfaces = ${luaList(['127.0.0.1'])}`,
    c.httpPort !== undefined ? `http_ports = ${luaList([c.httpPort])}` : 'http_ports = {}',
    `http_interfaces = ${luaList(['127.0.0.1'])}`,
    'https_ports = {}',
    'c2s_require_encryption = false',
    'modules_disabled = { "s2s" }',
    `modules_enabled = ${luaList(modules)}`,
    // Accounts come only from prosodyctl, so a test controls exactly who exists.
    'allow_registration = false',
    `password_hash = ${luaString(c.passwordHash)}`,
    'archive_expires_after = "never"',
    'default_archive_policy = true',
  ];

  if (c.storage === 'internal') {
    lines.push('storage = "internal"');
  } else {
    if (!c.sql) throw new Error(`storage ${c.storage} needs sql parameters`);
    lines.push('storage = "sql"', `sql = ${luaSqlTable(c.sql)}`);
  }

  if (c.privilege) lines.push(luaPrivilege(c.component.jid, c.privilege));
  if (c.extraGlobalConfig) lines.push(c.extraGlobalConfig);

  lines.push('');
  for (const host of c.hosts) lines.push(`VirtualHost ${luaString(host)}`);
  lines.push('');
  lines.push(`Component ${luaString(c.component.jid)}`);
  lines.push(`  component_secret = ${luaString(c.component.secret)}`);
  // mod_privilege learns about the component's login through a hook on the component host,
  // so it must be loaded there as well as on the VirtualHosts.
  if (c.privilege) lines.push('  modules_enabled = { "privilege" }');
  lines.push('');
  return lines.join('\n');
}
