/**
 * Non-ASCII PEP node options through ejabberd 23.01's SQL tables: what xporta writes, the real
 * ejabberd serves unchanged, and what ejabberd itself writes, xporta reads unchanged.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EjabberdSqlBackend } from '../../../src/storage/ejabberd-sql/index.js';
import { DATA_KINDS, NS, element, type PepNodeRecord, type UserRecord } from '../../../src/records/model.js';
import { deriveScram } from '../../support/documents.js';
import { describeWithEjabberd, ejabberdConnection, startEjabberd, type EjabberdHandle } from '../../support/ejabberd.js';
import { connectClient, getVCard, xml, type XmppClient } from '../../support/xmpp-client.js';

const TITLE = 'Notes of Zoë O’Brien-Müller';
const DESCRIPTION = 'Grüße, 日本語 and “quotes”';
const ALL = new Set(DATA_KINDS);

async function nodeConfig(client: XmppClient, node: string): Promise<Record<string, string | undefined>> {
  const result = await client.iq(xml('iq', { type: 'get' }, xml('pubsub', { xmlns: NS.pubsubOwner }, xml('configure', { node }))));
  const form = result.getChild('pubsub', NS.pubsubOwner)?.getChild('configure')?.getChild('x', NS.dataForms);
  const fields: Record<string, string | undefined> = {};
  for (const f of form?.getChildren('field') ?? []) fields[String(f.attrs.var)] = f.getChildText('value') ?? undefined;
  return fields;
}

describeWithEjabberd('non-ASCII PEP node options ↔ ejabberd 23.01', () => {
  let ej: EjabberdHandle;
  let backend: EjabberdSqlBackend;

  beforeAll(async () => {
    ej = await startEjabberd();
    backend = new EjabberdSqlBackend({ ...ejabberdConnection(ej), hosts: { localhost: {} }, newSchema: true, onCommitted: () => ej.clearCache() });
  }, 120_000);
  afterAll(async () => {
    await backend?.close();
    await ej?.stop();
  });

  it('a title and description written by xporta are served as they were', async () => {
    const records: UserRecord[] = [
      {
        kind: 'pep-node',
        node: 'urn:example:notes',
        config: [
          { var: 'pubsub#title', values: [TITLE] },
          { var: 'pubsub#description', values: [DESCRIPTION] },
          { var: 'pubsub#access_model', values: ['presence'] },
          // Empty fields, as Prosody's configuration forms carry many: nothing to report.
          { var: 'pubsub#body_xslt', values: [''] },
          { var: 'pubsub#dataform_xslt', values: [] },
          { var: 'pubsub#notify_sub', type: 'boolean', values: [''] },
        ],
        affiliations: [],
        subscriptions: [],
      },
      { kind: 'pep-item', node: 'urn:example:notes', id: 'current', payload: element('note', 'urn:example:notes', {}, ['x']) },
    ];
    const report = await backend.applyUser(
      { host: 'localhost', user: 'zoe' },
      { kind: 'user', name: 'zoe', scram: [deriveScram('pw')], extraAttributes: {} },
      (async function* () {
        yield* records;
      })(),
      { mode: 'replace', dryRun: false, include: ALL, createAccount: true },
    );
    expect(report.skipped).toEqual([]);
    const zoe = await connectClient({ service: ej.service, domain: 'localhost', username: 'zoe', password: 'pw' });
    try {
      const config = await nodeConfig(zoe, 'urn:example:notes');
      expect(config['pubsub#title']).toBe(TITLE);
      expect(config['pubsub#description']).toBe(DESCRIPTION);
    } finally {
      await zoe.close();
    }
  });

  it('an account whose vCard is only the PEP vCard4 and avatar gets a vcard-temp, as Prosody would serve it', async () => {
    const V4 = 'urn:ietf:params:xml:ns:vcard-4.0';
    const v = (name: string, children: (string | ReturnType<typeof element>)[] = []): ReturnType<typeof element> => element(name, V4, {}, children);
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
    const vcard4 = v('vcard', [
      v('fn', [v('text', ['Zoë O’Brien-Müller'])]),
      v('n', [v('surname', ['O’Brien-Müller']), v('given', ['Zoë'])]),
      v('nickname', [v('text', ['zoe'])]),
      v('email', [v('parameters', [v('type', [v('text', ['work'])])]), v('text', ['zoe@example.org'])]),
      v('tel', [v('uri', ['tel:+33 1 23 45 67 89'])]),
      v('impp', [v('uri', ['xmpp:zoe@localhost'])]),
    ]);
    const records: UserRecord[] = [
      { kind: 'pep-item', node: 'urn:xmpp:vcard4', id: 'current', payload: vcard4 },
      { kind: 'pep-item', node: 'urn:xmpp:avatar:data', id: 'a1b2', payload: element('data', 'urn:xmpp:avatar:data', {}, [png]) },
      {
        kind: 'pep-item',
        node: 'urn:xmpp:avatar:metadata',
        id: 'a1b2',
        payload: element('metadata', 'urn:xmpp:avatar:metadata', {}, [element('info', 'urn:xmpp:avatar:metadata', { id: 'a1b2', type: 'image/png', bytes: '70', width: '1', height: '1' })]),
      },
    ];
    const report = await backend.applyUser(
      { host: 'localhost', user: 'vera' },
      { kind: 'user', name: 'vera', scram: [deriveScram('pw')], extraAttributes: {} },
      (async function* () {
        yield* records;
      })(),
      { mode: 'replace', dryRun: false, include: ALL, createAccount: true },
    );
    expect(report.counts.vcard).toBe(1);
    expect(report.warnings.join('\n')).toMatch(/vcard-temp made from the PEP vCard4/);
    const vera = await connectClient({ service: ej.service, domain: 'localhost', username: 'vera', password: 'pw' });
    try {
      const vcard = await getVCard(vera);
      expect(vcard?.getChildText('FN')).toBe('Zoë O’Brien-Müller');
      expect(vcard?.getChild('N')?.getChildText('GIVEN')).toBe('Zoë');
      expect(vcard?.getChildText('NICKNAME')).toBe('zoe');
      expect(vcard?.getChild('EMAIL')?.getChildText('USERID')).toBe('zoe@example.org');
      expect(vcard?.getChild('EMAIL')?.getChild('WORK')).toBeDefined();
      expect(vcard?.getChild('TEL')?.getChildText('NUMBER')).toBe('+33 1 23 45 67 89');
      expect(vcard?.getChildText('JABBERID')).toBe('zoe@localhost');
      expect(vcard?.getChild('PHOTO')?.getChildText('TYPE')).toBe('image/png');
      expect(vcard?.getChild('PHOTO')?.getChildText('BINVAL')).toBe(png);
    } finally {
      await vera.close();
    }
  });

  it('a title ejabberd itself stored reads back unchanged', async () => {
    await ej.register('yann', 'localhost', 'pw');
    const yann = await connectClient({ service: ej.service, domain: 'localhost', username: 'yann', password: 'pw' });
    try {
      const form = xml(
        'x',
        { xmlns: NS.dataForms, type: 'submit' },
        xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, `${NS.pubsub}#node_config`)),
        xml('field', { var: 'pubsub#title' }, xml('value', {}, TITLE)),
        xml('field', { var: 'pubsub#description' }, xml('value', {}, 'desc ü')),
      );
      await yann.iq(xml('iq', { type: 'set' }, xml('pubsub', { xmlns: NS.pubsub }, xml('create', { node: 'urn:example:notes' }), xml('configure', {}, form))));
    } finally {
      await yann.close();
    }
    const nodes: PepNodeRecord[] = [];
    for await (const r of backend.readUser({ host: 'localhost', user: 'yann' }, { include: new Set(['pep']) })) if (r.kind === 'pep-node') nodes.push(r);
    const config = nodes.find((n) => n.node === 'urn:example:notes')?.config ?? [];
    expect(config.find((f) => f.var === 'pubsub#title')?.values).toEqual([TITLE]);
    expect(config.find((f) => f.var === 'pubsub#description')?.values).toEqual(['desc ü']);
  });
});
