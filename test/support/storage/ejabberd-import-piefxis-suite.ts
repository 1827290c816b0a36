/**
 * A document written by xporta, imported by ejabberd's own `ejabberdctl import_piefxis`: what
 * ejabberd's importer supports arrives and is served to a real client. PEP and the message
 * archive are outside what that importer reads (xporta's own backend carries them; see
 * ejabberd-sql-live and the cross-server tests). Run per generation by
 * ejabberd-import-piefxis.test.ts (23.01) and ejabberd-import-piefxis-24.test.ts (24.12).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NS, element, type DocumentEvent } from '../../../src/records/model.js';
import { writeDocument } from '../../../src/xep0227/writer.js';
import { deriveScram } from '../documents.js';
import { describeWithEjabberd, startEjabberd, type EjabberdHandle, type EjabberdVersion } from '../ejabberd.js';
import { connectClient, getPrivate, getRoster, getVCard, xml } from '../xmpp-client.js';

async function documentText(events: DocumentEvent[]): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of writeDocument(events)) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function account(name: string, credentials: Pick<Extract<DocumentEvent, { kind: 'user' }>, 'password' | 'scram'>): DocumentEvent[] {
  return [
    { kind: 'host', jid: 'localhost' },
    { kind: 'user', name, ...credentials, extraAttributes: {} },
    {
      kind: 'roster',
      version: '3',
      items: [
        { jid: 'bob@localhost', name: 'Bob', subscription: 'both', groups: ['Friends'] },
        { jid: 'carol@example.org', subscription: 'to', groups: [] },
      ],
    },
    { kind: 'vcard', vcard: element('vCard', NS.vcardTemp, {}, [element('FN', NS.vcardTemp, {}, [`${name} from xporta`])]) },
    { kind: 'private', element: element('prefs', 'urn:example:prefs', {}, [element('theme', 'urn:example:prefs', {}, ['dark'])]) },
    {
      kind: 'offline',
      stanza: element('message', NS.client, { from: 'bob@localhost/laptop', to: `${name}@localhost`, type: 'chat', id: 'off-1' }, [
        element('body', NS.client, {}, ['waiting for you']),
      ]),
    },
    { kind: 'pep-item', node: 'urn:xmpp:bookmarks:1', id: 'room@conference.example.org', payload: element('conference', 'urn:xmpp:bookmarks:1', { autojoin: 'true' }) },
    { kind: 'user-end' },
    { kind: 'host-end' },
  ];
}

/**
 * SCRAM-SHA-1 credentials from a fixed salt, chosen so that the stored or server key does (or
 * does not) contain a zero byte: a random salt gives one about one time in seven, and whether
 * ejabberd's import then works at all depends on it.
 */
function scramWithZeroByte(password: string, zero: boolean): ReturnType<typeof deriveScram> {
  for (let i = 0; ; i++) {
    const set = deriveScram(password, 'SCRAM-SHA-1', 4096, `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    const hasZero = [set.storedKey, set.serverKey].some((key) => Buffer.from(key, 'base64').includes(0));
    if (hasZero === zero) return set;
  }
}

export function defineImportPiefxisSuite(version: EjabberdVersion): void {
  describeWithEjabberd(`xporta document → ejabberd ${version} ejabberdctl import_piefxis`, () => {
    let ejabberd: EjabberdHandle;
    let dir: string;

    beforeAll(async () => {
      ejabberd = await startEjabberd({ version });
      dir = await mkdtemp(join(tmpdir(), 'xporta-import-piefxis-'));
    }, 120_000);

    afterAll(async () => {
      await ejabberd?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('imports roster, vCard, private XML and offline messages; the password works', async () => {
      const file = join(dir, 'dora.xml');
      await writeFile(file, await documentText(account('dora', { password: 'dora-pw', scram: [] })));
      const result = await ejabberd.ctl(['import_piefxis', file]);
      expect(result.code, result.stdout + result.stderr).toBe(0);

      const dora = await connectClient({ service: ejabberd.service, domain: 'localhost', username: 'dora', password: 'dora-pw' });
      try {
        const roster = await getRoster(dora);
        expect(roster.map((i) => [i.jid, i.subscription, [...i.groups]]).sort()).toEqual([
          ['bob@localhost', 'both', ['Friends']],
          ['carol@example.org', 'to', []],
        ]);
        expect((await getVCard(dora))?.getChildText('FN')).toBe('dora from xporta');
        expect((await getPrivate(dora, 'prefs', 'urn:example:prefs'))?.getChildText('theme')).toBe('dark');
      } finally {
        await dora.close();
      }
      expect((await ejabberd.ctl(['get_offline_count', 'dora', 'localhost'])).stdout.trim()).toBe('1');
    });

    it('delivers an offline message with its original send time (the XEP-0203 delay xporta writes)', async () => {
      // As read from Prosody's offline store: the time is the record's, the stanza has no delay.
      const events = account('gina', { password: 'gina-pw', scram: [] }).map((e) =>
        e.kind === 'offline' ? { ...e, timestamp: '2025-06-01T10:00:00Z' } : e,
      );
      const file = join(dir, 'gina.xml');
      await writeFile(file, await documentText(events));
      const result = await ejabberd.ctl(['import_piefxis', file]);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      const gina = await connectClient({ service: ejabberd.service, domain: 'localhost', username: 'gina', password: 'gina-pw' });
      try {
        const delivered = gina.waitFor((s) => s.is('message') && s.getChildText('body') === 'waiting for you');
        await gina.send(xml('presence'));
        const message = await delivered;
        const stamps = message.getChildren('delay', 'urn:xmpp:delay').map((d) => d.attrs.stamp as string);
        expect(stamps).toEqual(['2025-06-01T10:00:00Z']);
      } finally {
        await gina.close();
      }
    });

    it(`ejabberd ${version} keeps spec-form SCRAM credentials unusable: the account exists, the password fails`, async () => {
      const file = join(dir, 'erin.xml');
      await writeFile(file, await documentText(account('erin', { scram: [scramWithZeroByte('erin-pw', false)] })));
      const result = await ejabberd.ctl(['import_piefxis', file]);
      expect(result.code, `${result.stdout}${result.stderr}\n${ejabberd.logTail(30)}`).toBe(0);
      expect((await ejabberd.ctl(['registered_users', 'localhost'])).stdout.split('\n')).toContain('erin');
      // ejabberd's importer base64-decodes the values and stores raw bytes where it expects base64.
      // xporta's own ejabberd backend stores the same credentials correctly (ejabberd-sql-live).
      await expect(
        connectClient({ service: ejabberd.service, domain: 'localhost', username: 'erin', password: 'erin-pw', timeoutMs: 3000 }),
      ).rejects.toThrow();
    });

    it(`ejabberd ${version} fails the whole import when a SCRAM key holds a zero byte, which breaks its SQL`, async () => {
      const file = join(dir, 'fred.xml');
      await writeFile(file, await documentText(account('fred', { scram: [scramWithZeroByte('fred-pw', true)] })));
      const result = await ejabberd.ctl(['import_piefxis', file]);
      expect(result.code).not.toBe(0);
      expect(`${result.stdout}${result.stderr}`).toMatch(/import_failed/);
      expect((await ejabberd.ctl(['registered_users', 'localhost'])).stdout.split('\n')).not.toContain('fred');
    });
  }, version);
}
