import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import type { DocumentEvent } from '../../src/records/model.js';
import { EventSpoolWriter, readEventSpool, spoolingEvents } from '../../src/transfer/event-spool.js';
import { storedText, verbatimText } from '../../src/xml/stored-element.js';
import { readDocument } from '../../src/xep0227/reader.js';

const dir = mkdtempSync(join(tmpdir(), 'xporta-event-spool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DOC = `<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='urn:xmpp:pie:0'>
<host jid='localhost'>
<user name='alice' password='pw'>
<query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob &#x2603;
line two' subscription='both'><group>Friends</group></item></query>
<archive xmlns='urn:xmpp:pie:0#mam'><result xmlns='urn:xmpp:mam:2' id='m1'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/><message xmlns='jabber:client' from='bob@localhost/x' to='alice@localhost' type='chat'><body>hi
there &amp; ☃</body></message></forwarded></result></archive>
</user>
<user name='bob'/>
</host>
</server-data>`;

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('event spool', () => {
  it('gives back the events the reader parsed, an archived message as its stored text', async () => {
    const path = join(dir, 'doc.events');
    const writer = await EventSpoolWriter.create(path, 0o600);
    const passed = await collect(spoolingEvents(readDocument(Readable.from([DOC]), { roots: ['server-data', 'host'] }), writer));
    await writer.close();
    let bytes = 0;
    const read = await collect(readEventSpool(path, (n) => (bytes += n)));
    expect(bytes).toBe(writer.size);
    expect(read.map((e) => e.kind)).toEqual(passed.map((e) => e.kind));
    expect(JSON.parse(JSON.stringify(read))).toEqual(JSON.parse(JSON.stringify(passed)));
    const archived = (events: DocumentEvent[]) => events.find((e) => e.kind === 'archive') as Extract<DocumentEvent, { kind: 'archive' }>;
    const [before, after] = [archived(passed).stanza, archived(read).stanza];
    expect(storedText(after, after.xmlns)).toBeDefined();
    expect(storedText(after, after.xmlns)).toBe(storedText(before, before.xmlns));
    expect(verbatimText(after)).toBe(verbatimText(before));
    expect(after.attrs).toEqual(before.attrs);
    expect(after.children).toEqual(before.children);
  });

  it('reads back what spans its reads, and refuses a spool that ends inside an event', async () => {
    const path = join(dir, 'many.events');
    const writer = await EventSpoolWriter.create(path, 0o600);
    const events: DocumentEvent[] = [];
    for (let i = 0; i < 5000; i++) events.push({ kind: 'user', name: `user${i}-${'é'.repeat(i % 40)}`, scram: [], extraAttributes: {} }, { kind: 'user-end' });
    for (const event of events) await writer.write(event);
    await writer.close();
    expect(await collect(readEventSpool(path))).toEqual(events);
    writeFileSync(join(dir, 'cut.events'), '[{"kind":"user-end"}]\n[{"kind":');
    await expect(collect(readEventSpool(join(dir, 'cut.events')))).rejects.toThrow(/ends inside/);
  });
});
