/**
 * What another user of a real Prosody sees while an import runs: log in, send a message, have it
 * delivered, once a second, until told to stop. Shared by serving-during-import.test.ts and its
 * scale variant.
 */
import type { ProsodyHandle } from './prosody.js';
import { loginAs, xml, type XmppClient } from './xmpp-client.js';

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
