/**
 * The live suite of ProsodySqlBackend, run against one Prosody generation by
 * prosody-sql-live.test.ts (0.12) and prosody-sql-live-13.test.ts (13), on each SQL driver: real clients fill alice's
 * account (test/support/populate.ts) and xporta reads what Prosody stored; then xporta imports
 * alice's export as a new account `dave` (SCRAM credentials only, alice's, so alice's password
 * works) and a real client logs in as dave and gets everything back from Prosody.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProsodySqlBackend, ensureSchema, type ProsodySqlConnection } from '../../../src/storage/prosody-sql/index.js';
import { MysqlDialect } from '../../../src/storage/sql/mysql/dialect.js';
import { PostgresqlDialect } from '../../../src/storage/sql/postgresql/dialect.js';
import { DATA_KINDS, type UserRecord, type UserStart } from '../../../src/records/model.js';
import { NO_CONVERSION_PROSODY_OPTIONS, populateAccount, type PopulateSummary } from '../populate.js';
import { describeWithProsody, isCI, startProsody, type ProsodyHandle, type ProsodySqlParams, type ProsodyVersion } from '../prosody.js';
import { createTestDatabase, dropTestDatabase, sqlServerAvailable, type SqlServerKind } from '../../../bench/sql-databases.js';
import { getVCard, loginAs, type XmppClient } from '../xmpp-client.js';
import { expectClientFindsPopulatedAccount, importAliceAsDave, itReadsThePopulatedAccount, recordsOf } from './populated-reads.js';
import { collect, iterate } from './sample-user.js';

const ALL = new Set(DATA_KINDS);

type Variant = { readonly storage: 'sqlite' | SqlServerKind; readonly passwordHash: 'SHA-1' | 'SHA-256'; readonly conversion: boolean };

// SQLite keeps vCard and legacy bookmarks in their own stores; the others let Prosody convert them to PEP.
const VARIANTS: readonly Variant[] = [
  { storage: 'sqlite', passwordHash: 'SHA-1', conversion: false },
  { storage: 'postgres', passwordHash: 'SHA-256', conversion: true },
  { storage: 'mysql', passwordHash: 'SHA-1', conversion: false },
];

const serverUp: Record<SqlServerKind, boolean> = {
  postgres: await sqlServerAvailable('postgres'),
  mysql: await sqlServerAvailable('mysql'),
};

function connectionOf(sql: ProsodySqlParams): ProsodySqlConnection {
  const server = { host: sql.host, port: sql.port, user: sql.username, password: sql.password, database: sql.database };
  switch (sql.driver) {
    case 'SQLite3':
      return { dialect: 'sqlite', database: sql.database };
    case 'PostgreSQL':
      return { dialect: 'postgresql', ...server };
    case 'MySQL':
      return { dialect: 'mysql', ...server };
  }
}



export function defineProsodySqlLiveSuite(version: ProsodyVersion): void {
  describeWithProsody(`ProsodySqlBackend with a real Prosody ${version}`, () => {
    for (const variant of VARIANTS) {
      const skip = variant.storage !== 'sqlite' && !serverUp[variant.storage] && !isCI;
      describe.skipIf(skip)(`${variant.storage} (${variant.passwordHash}${variant.conversion ? ', vCard/bookmarks converted to PEP' : ''})`, () => {
        let prosody: ProsodyHandle;
        let summary: PopulateSummary;
        let backend: ProsodySqlBackend;
        let account: UserStart;
        let records: UserRecord[];
        const clients: XmppClient[] = [];

        beforeAll(async () => {
          prosody = await startProsody({
            version,
            storage: variant.storage,
            passwordHash: variant.passwordHash,
            ...(variant.conversion ? {} : NO_CONVERSION_PROSODY_OPTIONS),
          });
          summary = await populateAccount(prosody, { messages: 24 });
          backend = new ProsodySqlBackend({ ...connectionOf(prosody.sql!), hosts: { localhost: { passwordHash: variant.passwordHash } } });
          account = (await backend.readAccount({ host: 'localhost', user: 'alice' }))!;
          records = await collect(backend.readUser({ host: 'localhost', user: 'alice' }, { include: ALL }));
        }, 180_000);

        afterAll(async () => {
          await Promise.all(clients.map((c) => c.close()));
          await backend?.close();
          await prosody?.stop();
        });

        itReadsThePopulatedAccount(() => ({ account, records, summary }), variant.passwordHash);

        it('imports alice’s export as a new account that a real client logs into and finds complete', async () => {
          await importAliceAsDave(backend, account, records);

          // alice's SCRAM keys, so alice's password.
          const client = await loginAs(prosody, 'dave', summary.alice.password, { resource: 'check' });
          clients.push(client);
          await expectClientFindsPopulatedAccount(client, summary);
        });

        it.runIf(variant.conversion)('imports a vcard-temp that mod_vcard_legacy moves to PEP on first login', async () => {
          const erin = { host: 'localhost', user: 'erin' };
          const vcard = { ...summary.vcard.element, children: summary.vcard.element.children.filter((c) => typeof c === 'string' || c.name !== 'NICKNAME') };
          await backend.applyUser(erin, { kind: 'user', name: 'erin', scram: account.scram, extraAttributes: {} }, iterate<UserRecord>([{ kind: 'vcard', vcard }]), {
            mode: 'replace',
            dryRun: false,
            include: ALL,
            createAccount: true,
          });
          const client = await loginAs(prosody, 'erin', summary.alice.password);
          clients.push(client);
          expect((await getVCard(client))?.getChildText('FN')).toBe('Alice Example');
          const exported = await collect(backend.readUser(erin, { include: ALL }));
          expect(recordsOf(exported, 'vcard')).toEqual([]);
          expect(recordsOf(exported, 'pep-item').map((i) => i.node)).toContain('urn:xmpp:vcard4');
        });

        it.skipIf(variant.storage === 'sqlite')('creates the same tables and indexes as Prosody did', async () => {
          const kind = variant.storage as SqlServerKind;
          const name = await createTestDatabase(kind);
          const params = { host: prosody.sql!.host, port: prosody.sql!.port, user: prosody.sql!.username, password: prosody.sql!.password };
          const ours = kind === 'postgres' ? new PostgresqlDialect({ ...params, database: name }) : new MysqlDialect({ ...params, database: name });
          const theirs = kind === 'postgres' ? new PostgresqlDialect({ ...params, database: prosody.sql!.database }) : new MysqlDialect({ ...params, database: prosody.sql!.database });
          try {
            await ensureSchema(ours, version);
            expect(await describeSchema(ours)).toEqual(await describeSchema(theirs));
          } finally {
            await ours.close();
            await theirs.close();
            await dropTestDatabase(kind, name);
          }
        });
      });
    }
  }, version);
}

/** A renamed JID may sort elsewhere: the order readUser gives is by JID. */


/** Tables, columns and indexes as the server reports them, without names of the database itself. */
async function describeSchema(db: PostgresqlDialect | MysqlDialect): Promise<unknown> {
  if (db instanceof PostgresqlDialect) {
    const columns = await db.query(
      `SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`,
    );
    const indexes = await db.query(`SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`);
    return { columns, indexes };
  }
  const tables = [];
  for (const table of ['prosody', 'prosodyarchive']) {
    const rows = await db.query(`SHOW CREATE TABLE "${table}"`);
    tables.push(String(rows[0]?.['Create Table']).replace(/ AUTO_INCREMENT=\d+/, ''));
  }
  return tables;
}
