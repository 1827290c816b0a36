/**
 * Prosody → ejabberd → Prosody with a profile as Prosody's default keeps it (mod_vcard_legacy:
 * the vCard only as the PEP vCard4 item, the avatar only in XEP-0084 nodes) and a PEP node
 * with a non-ASCII title: every hop serves the same vcard-temp (FN and PHOTO), avatar and title
 * to a real client.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { StorageBackend, UserRef } from '../../src/storage/backend.js';
import { EjabberdSqlBackend } from '../../src/storage/ejabberd-sql/index.js';
import { ProsodySqlBackend } from '../../src/storage/prosody-sql/index.js';
import { exportUserDocument, importUserDocument } from '../../src/transfer/account-transfer.js';
import { DATA_KINDS, NS } from '../../src/records/model.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { writeDocument } from '../../src/xep0227/writer.js';
import { describeWithEjabberd, ejabberdConnection, startEjabberd, type EjabberdHandle } from '../support/ejabberd.js';
import { createUser, describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { connectClient, getPepItems, getVCard, setVCard, xml, type XmppClient } from '../support/xmpp-client.js';

const ALL = new Set(DATA_KINDS);
const ALICE: UserRef = { host: 'localhost', user: 'alice' };
const PASSWORD = 'alice pw';
const TITLE = 'Notes of Zoë O’Brien-Müller';
const FN = 'Zoë O’Brien-Müller';
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const NOTES = 'urn:example:notes';

async function move(from: StorageBackend, to: StorageBackend): Promise<string[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of writeDocument(exportUserDocument(from, ALICE, ALL))) chunks.push(chunk);
  const report = await importUserDocument(to, ALICE, readDocument(Buffer.concat(chunks)), { mode: 'replace', dryRun: false, include: ALL, createAccount: true });
  return [...report.warnings];
}

async function title(client: XmppClient): Promise<string | undefined> {
  const result = await client.iq(xml('iq', { type: 'get' }, xml('pubsub', { xmlns: NS.pubsubOwner }, xml('configure', { node: NOTES }))));
  const form = result.getChild('pubsub', NS.pubsubOwner)?.getChild('configure')?.getChild('x', NS.dataForms);
  return form?.getChildren('field').find((f) => f.attrs.var === 'pubsub#title')?.getChildText('value') ?? undefined;
}

async function served(client: XmppClient): Promise<{ fn: string | null | undefined; photo: string | null | undefined; title: string | undefined }> {
  const vcard = await getVCard(client);
  return { fn: vcard?.getChildText('FN'), photo: vcard?.getChild('PHOTO')?.getChildText('BINVAL'), title: await title(client) };
}

describeWithProsody('profile round trip', () => {
  describeWithEjabberd('Prosody → ejabberd → Prosody', () => {
    let first: ProsodyHandle;
    let ej: EjabberdHandle;
    let last: ProsodyHandle;

    beforeAll(async () => {
      [first, ej, last] = await Promise.all([startProsody(), startEjabberd(), startProsody()]);
    }, 120_000);
    afterAll(async () => {
      await Promise.all([first?.stop(), ej?.stop(), last?.stop()]);
    });

    it('serves the same vcard-temp, avatar and node title on every hop', async () => {
      await createUser(first, 'alice', 'localhost', PASSWORD);
      const alice = await connectClient({ service: first.service, domain: 'localhost', username: 'alice', password: PASSWORD });
      try {
        // mod_vcard_legacy turns this into the PEP vCard4 item and the XEP-0084 avatar nodes.
        await setVCard(alice, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, FN), xml('PHOTO', {}, xml('TYPE', {}, 'image/png'), xml('BINVAL', {}, PNG))));
        const form = xml(
          'x',
          { xmlns: NS.dataForms, type: 'submit' },
          xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, `${NS.pubsub}#node_config`)),
          xml('field', { var: 'pubsub#title' }, xml('value', {}, TITLE)),
        );
        await alice.iq(xml('iq', { type: 'set' }, xml('pubsub', { xmlns: NS.pubsub }, xml('create', { node: NOTES }), xml('configure', {}, form))));
        expect(await served(alice)).toEqual({ fn: FN, photo: PNG, title: TITLE });
        expect((await getPepItems(alice, undefined, 'urn:xmpp:vcard4')).length).toBe(1);
      } finally {
        await alice.close();
      }
      const prosodyBackend = (p: ProsodyHandle): ProsodySqlBackend =>
        new ProsodySqlBackend({ dialect: 'sqlite', database: p.sql?.database ?? '', hosts: { localhost: { passwordHash: 'SHA-1' } } });

      const source = prosodyBackend(first);
      const ejabberd = new EjabberdSqlBackend({ ...ejabberdConnection(ej), hosts: { localhost: {} }, newSchema: ej.newSchema, onCommitted: () => ej.clearCache() });
      try {
        expect((await move(source, ejabberd)).join('\n')).toMatch(/vcard-temp made from the PEP vCard4/);
      } finally {
        await source.close();
      }
      const onEjabberd = await connectClient({ service: ej.service, domain: 'localhost', username: 'alice', password: PASSWORD });
      try {
        expect(await served(onEjabberd)).toEqual({ fn: FN, photo: PNG, title: TITLE });
      } finally {
        await onEjabberd.close();
      }

      const target = prosodyBackend(last);
      try {
        await target.ensureSchema();
        await move(ejabberd, target);
      } finally {
        await ejabberd.close();
        await target.close();
      }
      // ejabberd's SCRAM salt cannot be kept by Prosody: the operator sets a new password.
      await createUser(last, 'alice', 'localhost', 'new pw');
      const onProsody = await connectClient({ service: last.service, domain: 'localhost', username: 'alice', password: 'new pw' });
      try {
        expect(await served(onProsody)).toEqual({ fn: FN, photo: PNG, title: TITLE });
      } finally {
        await onProsody.close();
      }
    }, 180_000);
  });
});
