/**
 * What another user of a real Prosody sees while an import runs: log in, send a message, have it
 * delivered, once a second, until told to stop; and the xporta that imports into the same
 * Prosody's SQLite database meanwhile. Shared by serving-during-import.live.test.ts and its scale
 * variant.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config/config.js';
import { buildApp } from '../../src/http/server.js';
import { openStorage } from '../../src/storage/open.js';
import { createUser, startProsody, type ProsodyHandle } from './prosody.js';
import { loginAs, xml, type XmppClient } from './xmpp-client.js';

export const SERVING_TOKEN = 'serving-test-operator-token';

/** A Prosody on SQLite with `bob` (who sends the rounds) and `carol` (online, who receives them). */
export async function startServingProsody(): Promise<{ prosody: ProsodyHandle; carol: XmppClient }> {
  const prosody = await startProsody({ storage: 'sqlite' });
  await createUser(prosody, 'bob', 'localhost', 'bobpw');
  await createUser(prosody, 'carol', 'localhost', 'carolpw');
  const carol = await loginAs(prosody, 'carol', 'carolpw', { presence: true, resource: 'desk' });
  return { prosody, carol };
}

/** An xporta on `prosody`'s own SQLite database in `journalMode`, answering SERVING_TOKEN. */
export async function servingXporta(prosody: ProsodyHandle, dataDir: string, journalMode: 'keep' | 'wal'): Promise<FastifyInstance> {
  const config = loadConfig({
    env: {
      XPORTA_DATA_DIR: dataDir,
      XPORTA_LOG_LEVEL: 'silent',
      XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'sqlite', database: join(prosody.rootDir, 'data', 'prosody.sqlite'), journalMode }),
      XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 't', sha256: createHash('sha256').update(SERVING_TOKEN).digest('hex'), scopes: ['export', 'import', 'admin'] }]),
    },
    cwd: dataDir,
  });
  const app = buildApp({ config, storage: await openStorage(config), logger: false });
  await app.ready();
  return app;
}

export interface Rounds {
  /** Milliseconds each round took (login + message delivered), failed ones included. */
  readonly durations: number[];
  readonly failures: string[];
}

/** Rounds of `bob` messaging `carol` (online) every second while `running()`, and `extra` more after. */
export async function messageRounds(prosody: ProsodyHandle, carol: XmppClient, running: () => boolean, extra = 3): Promise<Rounds> {
  const durations: number[] = [];
  const failures: string[] = [];
  let n = 0;
  let after = extra;
  while (running() || after-- > 0) {
    const t0 = Date.now();
    try {
      const bob = await loginAs(prosody, 'bob', 'bobpw', { resource: `r${n}` });
      const id = `ping-${n++}`;
      const delivered = carol.waitFor((s) => s.name === 'message' && s.attrs.id === id, 5000);
      await bob.send(xml('message', { to: 'carol@localhost/desk', type: 'chat', id }, xml('body', {}, `hello ${id}`)));
      await delivered;
      await bob.close();
    } catch (err) {
      failures.push(err instanceof Error ? err.message : String(err));
    }
    durations.push(Date.now() - t0);
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t0))));
  }
  return { durations, failures };
}

/** Lines of Prosody's log saying its SQLite database was locked. */
export async function lockedLines(prosody: ProsodyHandle): Promise<number> {
  return ((await prosody.logTail(20_000)).match(/database is locked/g) ?? []).length;
}
