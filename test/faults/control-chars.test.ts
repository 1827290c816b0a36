/**
 * Characters XML 1.0 cannot carry: an XML 1.1 document is refused before anything is stored,
 * and a control character that reached the store some other way (written here with SQL, as a
 * buggy tool or an old server could) exports as a well-formed document, replaced and logged.
 */
import { Writable, Readable } from 'node:stream';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DocumentEvent } from '../../src/records/model.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { accountDocument } from '../support/documents.js';
import { exportDoc, importDoc, startService, type TestService } from '../support/service.js';

async function parse(doc: string): Promise<DocumentEvent[]> {
  const out: DocumentEvent[] = [];
  for await (const e of readDocument(Readable.from([Buffer.from(doc)]))) out.push(e);
  return out;
}

describe('control characters on the SQLite store', () => {
  let service: TestService;
  const logLines: string[] = [];

  beforeAll(async () => {
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
        done();
      },
    });
    service = await startService(undefined, {}, { level: 'warn', stream });
  });
  afterAll(() => service?.close());

  it('an XML 1.1 document with control characters is refused with 422 and a position; nothing is stored', async () => {
    const doc =
      `<?xml version='1.1' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='mallory'>` +
      `<query xmlns='jabber:iq:roster'><item jid='bob@example.net' name='B&#x1;ob' subscription='both'/></query>` +
      `<vCard xmlns='vcard-temp'><FN>M&#x1;allory</FN></vCard></user></host></server-data>`;
    const res = await importDoc(service.app, 'mallory@localhost', doc);
    expect(res.status, res.body).toBe(422);
    const problem = JSON.parse(res.body) as Record<string, unknown>;
    expect(problem).toMatchObject({ type: 'urn:xporta:problem:xml-unsupported-version', line: 1, column: 1 });
    expect(String(problem.detail)).toMatch(/XML 1\.0/);
    expect((await exportDoc(service.app, 'mallory@localhost')).status).toBe(404);
  });

  it('an XML 1.0 document with a control character is refused with its position', async () => {
    const doc =
      `<?xml version='1.0'?>\n<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='mallory'>\n` +
      `<vCard xmlns='vcard-temp'><FN>M&#x1;allory</FN></vCard></user></host></server-data>`;
    const res = await importDoc(service.app, 'mallory@localhost', doc);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(JSON.parse(res.body)).toMatchObject({ line: 3 });
    expect((await exportDoc(service.app, 'mallory@localhost')).status).toBe(404);
  });

  it('a control character placed in the store exports as a well-formed document, replaced and logged', async () => {
    const doc = accountDocument({ host: 'localhost', user: 'alice', password: 'pw', archiveCount: 3 });
    expect((await importDoc(service.app, 'alice@localhost', doc)).status).toBe(200);
    const db = new Database(join(service.dir, 'prosody.sqlite'));
    // Prosody's JSON encoder writes a control character as \u0001.
    const changed = db
      .prepare(`UPDATE "prosody" SET "value" = replace("value", '"Bob"', '"B\\u0001ob"') WHERE "host" = 'localhost' AND "user" = 'alice' AND "store" = 'roster' AND "key" = 'bob@example.net'`)
      .run().changes;
    db.close();
    expect(changed).toBe(1);

    const res = await exportDoc(service.app, 'alice@localhost');
    expect(res.status).toBe(200);
    const events = await parse(res.body);
    const roster = events.find((e) => e.kind === 'roster');
    expect(roster?.kind === 'roster' && roster.items.find((i) => i.jid === 'bob@example.net')?.name).toBe('B\uFFFDob');
    expect(events.filter((e) => e.kind === 'archive')).toHaveLength(3);
    const warning = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.kind === 'roster');
    expect(warning).toMatchObject({ jid: 'alice@localhost', kind: 'roster', codePoint: 1 });
  });
});
