/**
 * An xporta (HTTP app + XMPP component) over a test Prosody's own SQLite database, and an
 * XEP-0050 client side for the rig's real XMPP users.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '../../src/config/config.js';
import type { ServiceContext } from '../../src/core/context.js';
import { buildApp } from '../../src/http/server.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import { openStorage } from '../../src/storage/open.js';
import { XmppComponent } from '../../src/xmpp/component.js';
import type { BackoffOptions, LogSink } from '../../src/xmpp/connection.js';
import { freePorts } from './ports.js';
import type { ProsodyHandle } from './prosody.js';
import { xml, type XmlElement, type XmppClient } from './xmpp-client.js';

export const OPERATOR = 'xmpp-test-operator-secret';
export const NS_COMMANDS = 'http://jabber.org/protocol/commands';
export const NS_DATA = 'jabber:x:data';
export const NS_MOVED = 'urn:xmpp:moved:1';

export type App = FastifyInstance & { readonly ctx: ServiceContext };

export interface Xporta {
  readonly app: App;
  readonly component: XmppComponent;
  readonly config: Config;
  /** `http://127.0.0.1:<port>`, also the configured publicUrl. */
  readonly baseUrl: string;
  readonly log: readonly string[];
  close(): Promise<void>;
}

/** Log lines are kept for failure messages; XPORTA_TEST_LOG=1 prints them as they come. */
function memoryLog(lines: string[]): LogSink {
  const write =
    (level: string) =>
    (obj: object, msg: string): void => {
      const line = `${level} ${msg} ${JSON.stringify(obj, (_k, v: unknown) => (v instanceof Error ? v.message : v))}`;
      lines.push(line);
      if (process.env.XPORTA_TEST_LOG === '1') console.log(`[xporta] ${line}`);
    };
  return { info: write('info'), warn: write('warn'), error: write('error'), debug: write('debug') };
}

export async function startXporta(
  prosody: ProsodyHandle,
  options: {
    readonly hosts: readonly string[];
    readonly backoff?: BackoffOptions;
    readonly waitOnline?: boolean;
    /** More configuration (XPORTA_… variables), e.g. XPORTA_XMPP_CLIENT for pulls. */
    readonly env?: Readonly<Record<string, string>>;
  },
): Promise<Xporta> {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-xmpp-'));
  const [port] = await freePorts(1);
  const baseUrl = `http://127.0.0.1:${port}`;
  if (!prosody.sql || prosody.sql.driver !== 'SQLite3') throw new Error('these tests share the rig’s SQLite database');
  const config = loadConfig({
    env: {
      XPORTA_DATA_DIR: dir,
      XPORTA_LOG_LEVEL: 'silent',
      XPORTA_PUBLIC_URL: baseUrl,
      XPORTA_HOSTS: JSON.stringify(Object.fromEntries(options.hosts.map((h) => [h, { passwordHash: prosody.passwordHash }]))),
      XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'sqlite', database: prosody.sql.database }),
      XPORTA_AUTH__USER_TOKEN_SECRET: 'x'.repeat(40),
      XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'ops', sha256: sha256Hex(OPERATOR), scopes: ['export', 'import', 'admin'], hosts: ['*'] }]),
      XPORTA_COMPONENT: JSON.stringify({
        enabled: true,
        service: `xmpp://127.0.0.1:${prosody.componentPort}`,
        domain: prosody.component.jid,
        secret: prosody.component.secret,
      }),
      ...options.env,
    },
    cwd: dir,
  });
  const storage = await openStorage(config);
  const lines: string[] = [];
  const component = new XmppComponent({ config, log: memoryLog(lines), ...(options.backoff ? { backoff: options.backoff } : {}) });
  const app = buildApp({ config, storage, logger: false, component }) as unknown as App;
  component.start(app.ctx);
  await app.listen({ host: '127.0.0.1', port });
  if (options.waitOnline !== false) await component.connection.waitOnline(15_000);
  return {
    app,
    component,
    config,
    baseUrl,
    log: lines,
    async close() {
      await component.stop();
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `check` holds, polling; fails with `what` after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------------------------------------
// XEP-0050 from the client side

export interface CommandReply {
  readonly element: XmlElement;
  readonly status: string;
  readonly sessionid: string;
  readonly notes: readonly { readonly type: string; readonly text: string }[];
  /** The form's (or result's) field values by var. */
  readonly fields: ReadonlyMap<string, string[]>;
  readonly formType: string | undefined;
}

function parseCommand(iq: XmlElement): CommandReply {
  const command = iq.getChild('command', NS_COMMANDS);
  if (!command) throw new Error(`no <command/> in ${iq.toString()}`);
  const form = command.getChild('x', NS_DATA);
  const fields = new Map<string, string[]>();
  for (const field of form?.getChildren('field') ?? []) {
    if (field.attrs.var) fields.set(field.attrs.var, field.getChildren('value').map((v) => v.text()));
  }
  return {
    element: command,
    status: command.attrs.status ?? '',
    sessionid: command.attrs.sessionid ?? '',
    notes: command.getChildren('note').map((n) => ({ type: n.attrs.type ?? 'info', text: n.text() })),
    fields,
    formType: form?.attrs.type,
  };
}

export function submitForm(values: Record<string, string | readonly string[]>): XmlElement {
  return xml(
    'x',
    { xmlns: NS_DATA, type: 'submit' },
    Object.entries(values).map(([name, value]) =>
      xml('field', { var: name }, (typeof value === 'string' ? [value] : value).map((v) => xml('value', {}, v))),
    ),
  );
}

/** Sends one `<command/>` request and parses the answer; IQ errors reject (XmppStanzaError). */
export async function command(
  client: XmppClient,
  to: string,
  node: string,
  options: { readonly action?: string; readonly sessionid?: string; readonly form?: Record<string, string | readonly string[]> } = {},
): Promise<CommandReply> {
  const result = await client.iq(
    xml(
      'iq',
      { type: 'set', to },
      xml('command', { xmlns: NS_COMMANDS, node, action: options.action ?? 'execute', sessionid: options.sessionid }, options.form && submitForm(options.form)),
    ),
    30_000,
  );
  return parseCommand(result);
}

/** The first http(s) URL in the text. */
export function urlIn(text: string): string {
  const match = /https?:\/\/\S+/.exec(text);
  if (!match) throw new Error(`no link in ${JSON.stringify(text)}`);
  return match[0];
}
