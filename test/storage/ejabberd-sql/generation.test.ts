/** ejabberd 24.12 specifics that need no server: schema detection from each generation's own SQLite schema, origin-id, bookmark conversion. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { originIdOf } from '../../../src/storage/ejabberd-sql/import/archive.js';
import { legacyFromPep, pepFromLegacy } from '../../../src/storage/ejabberd-sql/bookmarks.js';
import { ejabberdVersion, schemaTraits } from '../../../src/storage/ejabberd-sql/generation.js';
import { SqliteDialect } from '../../../src/storage/sql/sqlite/dialect.js';
import { element, NS } from '../../../src/records/model.js';
import { serializeElement } from '../../../src/xml/xml.js';
import { ejabberdInstall, EJABBERD_VERSIONS } from '../../support/server-versions.js';

describe('schema generation', () => {
  for (const version of EJABBERD_VERSIONS) {
    const sqlDir = ejabberdInstall(version).sqlDir;
    for (const file of ['lite.sql', 'lite.new.sql']) {
      it.skipIf(!existsSync(join(sqlDir, file)))(`ejabberd ${version}'s ${file} is told as ${version}`, async () => {
        const dir = mkdtempSync(join(tmpdir(), 'xporta-ejgen-'));
        try {
          const database = join(dir, 'ej.sqlite');
          const raw = new Database(database);
          raw.exec(readFileSync(join(sqlDir, file), 'utf8'));
          raw.close();
          const db = SqliteDialect.open({ database });
          try {
            const traits = await schemaTraits(db, 'sqlite');
            expect(traits.originId).toBe(version === '24.12');
            expect(ejabberdVersion(traits)).toBe(version);
            expect(ejabberdVersion(traits, '23.01')).toBe('23.01');
          } finally {
            await db.close();
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  }
  it('a schema_version table alone says 24.12', () => {
    expect(ejabberdVersion({ originId: false, schemaVersion: true })).toBe('24.12');
    expect(ejabberdVersion({ originId: false, schemaVersion: false })).toBe('23.01');
  });
});

describe('origin_id', () => {
  const body = element('body', NS.client, {}, ['x']);
  it('takes the origin-id, else the message id, else empty', () => {
    expect(originIdOf(element('message', NS.client, { id: 'm1' }, [body, element('origin-id', 'urn:xmpp:sid:0', { id: 'o1' })]))).toBe('o1');
    expect(originIdOf(element('message', NS.client, { id: 'm1' }, [body, element('origin-id', 'urn:example:other', { id: 'o1' })]))).toBe('m1');
    expect(originIdOf(element('message', NS.client, {}, [body]))).toBe('');
  });
});

describe('bookmark conversion (XEP-0402 §5.3)', () => {
  const legacy = element('storage', 'storage:bookmarks', {}, [
    element('conference', 'storage:bookmarks', { jid: 'a@muc.example', name: 'A', autojoin: '1' }, [
      element('nick', 'storage:bookmarks', {}, ['me']),
      element('password', 'storage:bookmarks', {}, ['s3cret']),
    ]),
    element('conference', 'storage:bookmarks', { jid: 'b@muc.example' }),
    element('url', 'storage:bookmarks', { url: 'https://example.org' }),
  ]);
  it('legacy → PEP items, one per room, id the room JID', () => {
    const items = pepFromLegacy(legacy);
    expect(items.map((i) => [i.id, serializeElement(i.payload)])).toEqual([
      ['a@muc.example', `<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true' name='A'><nick>me</nick><password>s3cret</password></conference>`],
      ['b@muc.example', `<conference xmlns='urn:xmpp:bookmarks:1' autojoin='false'/>`],
    ]);
  });
  it('PEP items → legacy, and back to the same items', () => {
    const items = pepFromLegacy(legacy);
    const back = legacyFromPep(items);
    expect(pepFromLegacy(back)).toEqual(items);
    expect(back.children).toHaveLength(2);
  });
});
