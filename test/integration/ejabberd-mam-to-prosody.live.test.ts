/**
 * Archive times from ejabberd (microseconds) into Prosody 0.12, whose archive keeps whole
 * seconds: alice's account exported by xporta from a real ejabberd's SQL store and imported into
 * a real Prosody 0.12 (after the password reset such a move needs: Prosody cannot keep ejabberd's
 * binary SCRAM salt) serves every archived message, at
 * its ejabberd time rounded down to the second, and her offline messages at their send time,
 * rounded down the same way (Prosody 0.12's offline store keeps whole seconds too).
 *
 * Why the fraction cannot be kept: Prosody 0.12 formats a stored time with Lua's `os.date`,
 * which on the Lua 5.4 it runs on refuses a number without an integer representation, so an
 * archive row with a fractional `when` breaks the MAM query that reaches it: no answer, and
 * Lua's error in Prosody's log (shown below).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runExport, runImport } from '../../src/cli/commands.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import { probeAccount, type ServedAccount } from '../support/account-probe.js';
import { describeWithEjabberd, startEjabberd, type EjabberdHandle } from '../support/ejabberd.js';
import { EJ_ALICE_PASSWORD, populateEjabberdAlice } from '../support/ejabberd-populate.js';
import { createUser, skipWithoutProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { connectClient, queryMam, type MamResult } from '../support/xmpp-client.js';

const NEW_PASSWORD = 'a new password';
const wholeSecond = (stamp: string | undefined): string => (stamp ?? '').replace(/\.\d+Z$/, 'Z');

describe.skipIf(skipWithoutProsody('0.12'))('Prosody 0.12 target', () => describeWithEjabberd('ejabberd archive times (µs) → xporta → Prosody 0.12 (whole seconds)', () => {
  let work: string;
  let source: EjabberdHandle;
  let target: ProsodyHandle;
  let sourceMam: MamResult[];
  let sourceAlice: ServedAccount;
  let doc: string;

  const aliceOn = (server: { service: string }) => ({ service: server.service, domain: 'localhost', username: 'alice', password: EJ_ALICE_PASSWORD });

  const reset = { service: '', domain: 'localhost', username: 'alice', password: NEW_PASSWORD };

  async function configFor(storage: object, name: string): Promise<Config> {
    const path = join(work, `${name}.json`);
    await writeFile(path, JSON.stringify({ dataDir: join(work, `xporta-${name}`), storage, hosts: { localhost: {} }, audit: { file: join(work, `${name}-audit.log`) } }));
    return loadConfig({ configPath: path, env: {} });
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'xporta-ej-mam-prosody-'));
    [source, target] = await Promise.all([startEjabberd({ newSchema: true }), startProsody({ version: '0.12', dir: join(work, 'prosody') })]);
    Object.assign(reset, { service: target.service });
    await populateEjabberdAlice(source);
    doc = join(work, 'alice.xml');
    const out = createWriteStream(doc);
    await runExport(await configFor({ type: 'ejabberd-sql', driver: 'sqlite', schema: 'new', database: source.sqlitePath }, 'source'), { target: 'alice@localhost' }, out);
    out.end();
    await finished(out);
    const client = await connectClient(aliceOn(source));
    try {
      sourceMam = await queryMam(client);
    } finally {
      await client.close();
    }
    sourceAlice = await probeAccount(aliceOn(source));
  }, 180_000);

  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('ejabberd serves and xporta writes the archive times with their microseconds', async () => {
    expect(sourceMam).toHaveLength(3);
    for (const m of sourceMam) expect(m.stamp).toMatch(/\.\d{6}Z$/);
    const text = await readFile(doc, 'utf8');
    expect(text.match(/<archive[^>]*>/) ?? []).toHaveLength(1);
    for (const m of sourceMam) expect(text).toContain(m.stamp);
  });

  it('Prosody 0.12 serves every message at its time rounded down to the second, and the offline messages at their send time, also to the second', async () => {
    const report = await runImport(await configFor({ type: 'prosody-sql', driver: 'sqlite', database: target.sql?.database }, 'target'), { jid: 'alice@localhost', file: doc, createAccount: true }, Readable.from([]));
    expect(report.counts.archive).toBe(3);
    expect(report.warnings).toEqual([expect.stringMatching(/password must be reset/)]);
    await createUser(target, 'alice', 'localhost', NEW_PASSWORD);
    const client = await connectClient(reset);
    let served: MamResult[];
    try {
      served = await queryMam(client);
    } finally {
      await client.close();
    }
    expect(served.map((m) => [m.message.getChildText('body'), m.stamp])).toEqual(sourceMam.map((m) => [m.message.getChildText('body'), wholeSecond(m.stamp)]));
    const offline = (await probeAccount(reset)).offline;
    expect(offline.map((o) => [o.body, o.stamp])).toEqual(sourceAlice.offline.map((o) => [o.body, wholeSecond(o.stamp)]));
  });

  it('a fractional time in its archive breaks Prosody 0.12\'s MAM query', async () => {
    const db = new Database(target.sql?.database ?? '');
    try {
      const changed = db.prepare(`UPDATE prosodyarchive SET "when" = "when" + 0.5 WHERE "user" = 'alice' AND "store" = 'archive'`).run().changes;
      expect(changed).toBe(3);
    } finally {
      db.close();
    }
    const client = await connectClient(reset);
    try {
      const failure = await queryMam(client).catch((err: unknown) => err);
      expect(String(failure)).toMatch(/IQ timed out|internal-server-error/);
      expect(await target.logTail(200)).toContain('has no integer representation');
    } finally {
      await client.close();
    }
  });
}));
