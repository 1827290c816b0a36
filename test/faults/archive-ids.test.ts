/**
 * Small data faults, through the HTTP service on both Prosody stores: archive items without an
 * id get one derived from their content (a second merge adds nothing), stamps outside the
 * four-digit years are refused, and kept credentials are not reported as needing a reset.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveScram, scramXml } from '../support/documents.js';
import { exportDoc, importDoc, startService, type TestService } from '../support/service.js';

function doc(archive: string, credentials = scramXml(deriveScram('pw'))): string {
  return (
    `<?xml version='1.0'?><server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='alice'>${credentials}` +
    `<archive xmlns='urn:xmpp:pie:0#mam'>${archive}</archive></user></host></server-data>`
  );
}

function item(id: string, stamp: string, body: string): string {
  return (
    `<result xmlns='urn:xmpp:mam:2' id='${id}'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='${stamp}'/>` +
    `<message xmlns='jabber:client' from='bob@example.net/x' to='alice@localhost' type='chat'><body>${body}</body></message></forwarded></result>`
  );
}

const ids = (exported: string): string[] => [...exported.matchAll(/<result xmlns='urn:xmpp:mam:2' id='([^']*)'/g)].map((m) => m[1]!);

for (const storage of [undefined, { type: 'prosody-files', path: 'store' }]) {
  describe(`archive ids and stamps (${storage ? 'Prosody files' : 'Prosody SQL, SQLite'})`, () => {
    let service: TestService;
    beforeAll(async () => {
      service = await startService(storage);
    });
    afterAll(() => service?.close());

    it("items with id='' get ids derived from their content: merging the same document again adds nothing", async () => {
      const archive = item('', '2024-01-01T10:00:00Z', 'one') + item('', '2024-01-01T10:00:01Z', 'two') + item('kept-id', '2024-01-01T10:00:02Z', 'three');
      expect((await importDoc(service.app, 'alice@localhost', doc(archive))).status).toBe(200);
      const first = ids((await exportDoc(service.app, 'alice@localhost')).body);
      expect(first).toHaveLength(3);
      expect(first[2]).toBe('kept-id');
      expect(first[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(first[0]).not.toBe(first[1]);
      for (let i = 0; i < 2; i++) {
        const merged = await importDoc(service.app, 'alice@localhost', doc(archive), 'mode=merge');
        expect(merged.status, merged.body).toBe(200);
      }
      expect(ids((await exportDoc(service.app, 'alice@localhost')).body)).toEqual(first);
    });

    it.each(['0000-01-01T00:00:00Z', '0000-12-31T23:00:00-02:00', '9999-12-31T23:59:59-01:00'])('a stamp of %s is refused with 422 and its position; nothing changes', async (stamp) => {
      const before = (await exportDoc(service.app, 'alice@localhost')).body;
      const res = await importDoc(service.app, 'alice@localhost', doc(item('x', stamp, 'old')));
      expect(res.status, res.body).toBe(422);
      expect(JSON.parse(res.body)).toMatchObject({ line: 1, column: expect.any(Number) as unknown });
      expect((await exportDoc(service.app, 'alice@localhost')).body).toBe(before);
    });

    it('credentials kept because the document has none usable are not reported as "password must be reset"', async () => {
      const sha256Only = scramXml(deriveScram('other', 'SCRAM-SHA-256'));
      const res = await importDoc(service.app, 'alice@localhost', doc('', sha256Only), 'mode=merge');
      expect(res.status, res.body).toBe(200);
      const report = JSON.parse(res.body) as { warnings: string[] };
      expect(report.warnings.join('\n')).not.toMatch(/password must be reset/);
      expect(report.warnings).toEqual([expect.stringMatching(/existing credentials were kept/)]);
    });
  });
}
