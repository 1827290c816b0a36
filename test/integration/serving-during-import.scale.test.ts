/**
 * Scale variant of serving-during-import.live.test.ts: a 1,000,000-message import into one account of
 * a real Prosody's SQLite store while another user logs in and sends a message every second.
 * WAL mode (`storage.journalMode: "wal"`) is asserted (no failed round, none over 2 s); Prosody's
 * default rollback journal is measured and reported, since there the import's write lock blocks
 * Prosody's readers (see README, "Faults, concurrency and consistency").
 */
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { syntheticAccount } from '../../bench/synthetic.js';
import { writeDocument } from '../../src/xep0227/writer.js';
import { describeWithProsody, type ProsodyHandle } from '../support/prosody.js';
import type { XmppClient } from '../support/xmpp-client.js';
import { SERVING_TOKEN, lockedLines, messageRounds, servingXporta, startServingProsody } from '../support/serving-rounds.js';

const MESSAGES = 1_000_000;

describeWithProsody(`Prosody on SQLite serves other users during a ${MESSAGES.toLocaleString('en')}-message import`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-serving-scale-'));
  const doc = join(dir, 'account.xml');
  let prosody: ProsodyHandle;
  let carol: XmppClient;
  const apps: FastifyInstance[] = [];

  beforeAll(async () => {
    await pipeline(Readable.from(writeDocument(syntheticAccount(MESSAGES))), createWriteStream(doc));
    ({ prosody, carol } = await startServingProsody());
  }, 300_000);

  afterAll(async () => {
    await carol?.close();
    for (const app of apps) await app.close();
    await prosody?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // Rollback journal first: the WAL run switches the file for good.
  it.each([
    ['keep', 'alpha'],
    ['wal', 'omega'],
  ] as const)('journalMode %s: logins and messages during the import', async (journalMode, user) => {
    const app = await servingXporta(prosody, join(dir, journalMode), journalMode);
    apps.push(app);

    const before = await lockedLines(prosody);
    let done = false;
    const started = Date.now();
    const importing = app
      .inject({
        method: 'PUT',
        url: `/v1/users/${user}%40localhost/import?createAccount=true`,
        headers: { authorization: `Bearer ${SERVING_TOKEN}`, 'content-type': 'application/xml' },
        payload: createReadStream(doc),
      })
      .finally(() => (done = true));
    const { durations, failures } = await messageRounds(prosody, carol, () => !done);
    const res = await importing;
    const elapsed = Date.now() - started;
    const longest = Math.max(...durations);
    const locked = (await lockedLines(prosody)) - before;
    console.info(
      `[serving-during-import.scale] journalMode ${journalMode}: import ${elapsed} ms; ${durations.length} rounds, ${failures.length} failed` +
        `${failures.length > 0 ? ` (${[...new Set(failures.map((f) => f.replace(/ via .*?:/, ':')))].join('; ')})` : ''}; longest round ${longest} ms; ` +
        `Prosody "database is locked" lines: ${locked}`,
    );
    expect(res.statusCode, res.body.slice(0, 500)).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ counts: { archive: MESSAGES } });
    if (journalMode === 'wal') {
      expect(failures).toEqual([]);
      expect(longest).toBeLessThan(2000);
    }
  }, 900_000);
});
