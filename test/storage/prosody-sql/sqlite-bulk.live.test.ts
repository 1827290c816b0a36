/**
 * The SQLite bulk load under a running Prosody 0.12: xporta drops and rebuilds prosodyarchive's
 * indexes while Prosody holds prepared statements on that table, which must go on working (they
 * re-prepare after the schema change), and Prosody serves the imported archive.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ProsodySqlBackend } from '../../../src/storage/prosody-sql/index.js';
import { NS, element, type ArchiveRecord } from '../../../src/records/model.js';
import { createUser, describeWithProsody, startProsody, type ProsodyHandle } from '../../support/prosody.js';
import { loginAs, queryMam, sendMessage, type XmppClient } from '../../support/xmpp-client.js';
import { iterate } from '../../support/storage/sample-user.js';
import { droppedIndexes, recordingDialect, schemaOf } from '../../support/storage/sqlite-bulk.js';

const PASSWORD = 'bulk-secret';
/** Three INSERT batches: the indexes go after the first. */
const MESSAGES = 1200;

/** Yesterday's messages from bob to dave, one a second (mod_mam expires week-old ones). */
function importedMessages(): ArchiveRecord[] {
  const start = Math.floor(Date.now() / 1000) - 86_400;
  return Array.from({ length: MESSAGES }, (_, i) => ({
    kind: 'archive',
    id: `bulk-${String(i).padStart(5, '0')}`,
    timestamp: new Date((start + i) * 1000).toISOString().replace('.000Z', 'Z'),
    with: 'bob@localhost',
    stanza: element('message', NS.client, { from: 'bob@localhost/pc', to: 'dave@localhost', type: 'chat', id: `m${i}` }, [element('body', NS.client, {}, [`imported ${i}`])]),
  }));
}

describeWithProsody('SQLite bulk load with a real Prosody', () => {
  let prosody: ProsodyHandle;
  const clients: XmppClient[] = [];

  beforeAll(async () => {
    prosody = await startProsody({ storage: 'sqlite' });
    for (const user of ['alice', 'carol', 'dave']) await createUser(prosody, user, 'localhost', PASSWORD);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await prosody?.stop();
  });

  it('serves an archive imported without indexes, and goes on archiving with the rebuilt ones', async () => {
    const file = prosody.sql!.database;
    const alice = await loginAs(prosody, 'alice', PASSWORD);
    clients.push(alice);
    // Prosody prepares its archive statements (INSERT, and the MAM query) before the import.
    const before = await sendMessage(alice, 'carol@localhost', 'before the import');
    expect((await queryMam(alice)).map((m) => m.message.attrs.id)).toEqual([before]);
    const schema = schemaOf(file);

    const { dialect, statements } = recordingDialect({ database: file, bulkLoadThreshold: 100 });
    const backend = new ProsodySqlBackend(dialect, { hosts: { localhost: { passwordHash: 'SHA-1' } } });
    try {
      const report = await backend.applyUser({ host: 'localhost', user: 'dave' }, { kind: 'user', name: 'dave', scram: [], extraAttributes: {} }, iterate(importedMessages()), {
        mode: 'merge',
        dryRun: false,
        include: new Set(['archive']),
        createAccount: false,
      });
      expect(report.counts).toEqual({ archive: MESSAGES });
    } finally {
      await backend.close();
    }
    expect(droppedIndexes(statements)).toHaveLength(4);
    expect(schemaOf(file)).toEqual(schema);

    // Prosody's statements on the table work after the schema change: archiving and querying.
    const after = await sendMessage(alice, 'dave@localhost', 'after the import');
    expect((await queryMam(alice)).map((m) => m.message.attrs.id)).toEqual([before, after]);

    const dave = await loginAs(prosody, 'dave', PASSWORD);
    clients.push(dave);
    const archive = await queryMam(dave, { max: 250 });
    expect(archive.map((m) => m.id)).toEqual([...importedMessages().map((m) => m.id), expect.any(String)]);
    expect(archive[MESSAGES - 1]?.message.getChildText('body')).toBe(`imported ${MESSAGES - 1}`);
    expect(archive[MESSAGES]?.message.getChildText('body')).toBe('after the import');
    // Filtered by peer: prosodyarchive_with_when.
    expect(await queryMam(dave, { with: 'alice@localhost' })).toHaveLength(1);
  });
});
