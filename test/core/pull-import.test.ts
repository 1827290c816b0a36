/**
 * The core's pull (src/core/pull-import.ts) without a remote server: the pull slots
 * (`xmppClient.maxConcurrentPulls`), the archive limit (`xmppClient.maxArchiveMessages`) and a
 * login refused before any connection (the outgoing policy) giving its slot back. Pulls from
 * real servers are in test/integration/pull-xmpp.live.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { BusyError, PullLimitError } from '../../src/core/errors.js';
import { Slots } from '../../src/core/locks.js';
import { beginPull, limitArchive, openPull, pullableKinds, XmppPullError, type PullServices } from '../../src/core/pull-import.js';
import { element, type DocumentEvent } from '../../src/records/model.js';
import { selectKinds } from '../../src/transfer/account-transfer.js';

function services(capacity: number, allow: readonly string[] = []): PullServices {
  const config = loadConfig({
    env: {
      XPORTA_OUTGOING: JSON.stringify({ allow }),
      // Port 9 on loopback: refused by the policy before any connection is tried.
      XPORTA_XMPP_CLIENT: JSON.stringify({ services: ['old.test=127.0.0.1:9'], maxConcurrentPulls: capacity }),
    },
    cwd: '/srv/xporta',
  });
  return { config, pullSlots: new Slots(config.xmppClient.maxConcurrentPulls) };
}

const source = { jid: 'alice@old.test', password: 'secret-Pa55', include: selectKinds() };

async function collect(events: AsyncIterable<DocumentEvent>): Promise<DocumentEvent[]> {
  const out: DocumentEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

function archive(n: number): DocumentEvent[] {
  return Array.from({ length: n }, (_, i): DocumentEvent => ({ kind: 'archive', id: `m${i}`, timestamp: '2026-01-01T00:00:00Z', stanza: element('message', 'jabber:client') }));
}

async function* from(events: readonly DocumentEvent[]): AsyncGenerator<DocumentEvent> {
  yield* events;
}

describe('pull slots', () => {
  it('refuses a pull beyond xmppClient.maxConcurrentPulls as busy, and frees the slot on release', () => {
    const s = services(1);
    const first = beginPull(s, source);
    const err = (() => {
      try {
        beginPull(s, source);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(BusyError);
    expect((err as BusyError).code).toBe('pull-slots');
    expect((err as Error).message).toMatch(/maxConcurrentPulls/);
    first.release();
    first.release();
    expect(s.pullSlots.inUse).toBe(0);
    beginPull(s, source).release();
  });

  it('a login that fails gives its slot back, and its error carries no password', async () => {
    const s = services(1);
    const err = await openPull(s, source).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XmppPullError);
    expect((err as XmppPullError).code).toBe('address-refused');
    expect(String((err as Error).message)).not.toContain(source.password);
    expect(s.pullSlots.inUse).toBe(0);
  });

  it('events that end (here: fail) give the slot back too', async () => {
    const s = services(2);
    const pull = beginPull(s, source);
    expect(s.pullSlots.inUse).toBe(1);
    await expect(collect(pull.events)).rejects.toBeInstanceOf(XmppPullError);
    expect(s.pullSlots.inUse).toBe(0);
  });

  it('leaves out what the protocol cannot read', () => {
    expect([...pullableKinds(selectKinds())]).not.toContain('credentials');
    expect([...pullableKinds(selectKinds())]).not.toContain('offline');
    expect([...pullableKinds(selectKinds())]).toContain('archive');
  });
});

describe('the archive limit', () => {
  it('stops at the first message when the announced archive is larger, naming its size', async () => {
    const notes = { archiveRead: 0, archiveTotal: 11 };
    const seen: DocumentEvent[] = [];
    const err = await (async () => {
      for await (const e of limitArchive(from([{ kind: 'host', jid: 'old.test' }, ...archive(3)]), notes, 10)) seen.push(e);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PullLimitError);
    expect((err as Error).message).toMatch(/holds 11 messages, more than the 10 .*nothing was written/);
    expect(seen.map((e) => e.kind)).toEqual(['host']);
  });

  it('stops once more messages than the limit were read when the server announced no count', async () => {
    const notes: { archiveRead: number; archiveTotal?: number } = { archiveRead: 0 };
    async function* counted(): AsyncGenerator<DocumentEvent> {
      for (const e of archive(5)) {
        notes.archiveRead++;
        yield e;
      }
    }
    const err = await collect(limitArchive(counted(), notes, 3)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PullLimitError);
    expect(notes.archiveRead).toBe(4);
  });

  it('passes an archive within the limit unchanged', async () => {
    const events = archive(3);
    expect(await collect(limitArchive(from(events), { archiveRead: 3, archiveTotal: 3 }, 3))).toEqual(events);
  });
});
