import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDocument, type ReaderOptions } from '../../src/xep0227/reader.js';
import { collect, expectRejection, positionOf, readError } from '../support/xep0227.js';

const XI = "xmlns:xi='http://www.w3.org/2001/XInclude'";
const main = (...includes: string[]): string =>
  `<?xml version='1.0'?>\n<server-data xmlns='urn:xmpp:pie:0' ${XI}>\n${includes.map((i) => `  ${i}`).join('\n')}\n</server-data>\n`;

let root: string;
let base: string;
const opts = (): ReaderOptions => ({ allowXInclude: true, baseDir: base });

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'xporta-xi-'));
  base = path.join(root, 'export');
  mkdirSync(path.join(base, 'hosts'), { recursive: true });
  writeFileSync(path.join(root, 'secret.xml'), "<host xmlns='urn:xmpp:pie:0' jid='secret.example'><user name='root'/></host>");
  writeFileSync(path.join(base, 'a.example.xml'), `<host xmlns='urn:xmpp:pie:0' ${XI} jid='a.example'>\n<user name='alice'/>\n<xi:include href='hosts/bob.xml'/>\n</host>`);
  writeFileSync(path.join(base, 'hosts/bob.xml'), "<user xmlns='urn:xmpp:pie:0' name='bob'><vCard xmlns='vcard-temp'/></user>");
  writeFileSync(path.join(base, 'hosts/alice-again.xml'), "<user xmlns='urn:xmpp:pie:0' name='alice'/>");
  writeFileSync(path.join(base, 'hosts/bad.xml'), "<?xml version='1.0'?>\n<host xmlns='urn:xmpp:pie:0' jid='b.example'>\n  <user/>\n</host>");
  writeFileSync(path.join(base, 'user-root.xml'), "<user xmlns='urn:xmpp:pie:0' name='carol'/>");
  writeFileSync(path.join(base, 'loop.xml'), `<server-data xmlns='urn:xmpp:pie:0' ${XI}><xi:include href='loop.xml'/></server-data>`);
  writeFileSync(path.join(base, 'big.xml'), `<host xmlns='urn:xmpp:pie:0' jid='big.example'>${' '.repeat(5000)}</host>`);
  symlinkSync(path.join(root, 'secret.xml'), path.join(base, 'link.xml'));
  symlinkSync(root, path.join(base, 'up'));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

function read(doc: string, options: ReaderOptions = opts()): Promise<unknown[]> {
  return collect(readDocument([doc], options));
}

async function refused(doc: string, needle: string, options: ReaderOptions = opts()): Promise<void> {
  const at = positionOf(doc, needle);
  await expectRejection(doc, 'xinclude', at.line, at.column, options);
}

describe('XInclude', () => {
  it('splices host files and, inside them, user files, relative to the including file', async () => {
    const events = await read(main("<xi:include href='a.example.xml'/>"));
    expect(events).toEqual([
      { kind: 'host', jid: 'a.example' },
      { kind: 'user', name: 'alice', scram: [], extraAttributes: {} },
      { kind: 'user-end' },
      { kind: 'user', name: 'bob', scram: [], extraAttributes: {} },
      { kind: 'vcard', vcard: { name: 'vCard', xmlns: 'vcard-temp', attrs: {}, children: [] } },
      { kind: 'user-end' },
      { kind: 'host-end' },
    ]);
  });

  it("accepts parse='xml', the default, and percent-escapes", async () => {
    expect(await read(main("<xi:include href='a%2Eexample.xml' parse='xml'/>"))).toHaveLength(7);
  });

  it('is refused unless allowed and given a base directory', async () => {
    const doc = main("<xi:include href='a.example.xml'/>");
    await refused(doc, '<xi:include', {});
    await refused(doc, '<xi:include', { baseDir: base });
    await refused(doc, '<xi:include', { allowXInclude: true });
  });

  it('refuses hrefs that leave the base directory', async () => {
    for (const href of ['../secret.xml', '%2e%2e/secret.xml', 'hosts/../../secret.xml', '/etc/passwd', 'file:///etc/passwd', 'http://example.org/x.xml', '..%2fsecret.xml', 'a\\b.xml']) {
      await refused(main(`<xi:include href='${href}'/>`), '<xi:include');
    }
  });

  it('refuses symlinks that lead out of the base directory', async () => {
    await refused(main("<xi:include href='link.xml'/>"), '<xi:include');
    await refused(main("<xi:include href='up/secret.xml'/>"), '<xi:include');
  });

  it('refuses xpointer, other parse modes, missing href and missing files', async () => {
    await refused(main("<xi:include href='a.example.xml' xpointer='element(/1)'/>"), '<xi:include');
    await refused(main("<xi:include href='a.example.xml' parse='text'/>"), '<xi:include');
    await refused(main('<xi:include/>'), '<xi:include');
    await refused(main("<xi:include href='nope.xml'/>"), '<xi:include');
    await refused(main("<xi:include href='hosts'/>"), '<xi:include');
  });

  it('refuses includes inside <user>: user data is not processed', async () => {
    const doc = `<server-data xmlns='urn:xmpp:pie:0' ${XI}><host jid='a.example'><user name='u'>\n<xi:include href='hosts/bob.xml'/></user></host></server-data>`;
    await refused(doc, '<xi:include');
  });

  it('stops include loops at nesting depth 4, naming the file', async () => {
    const err = await readError([main("<xi:include href='loop.xml'/>")], opts());
    expect(err).toMatchObject({ code: 'xinclude', source: 'loop.xml', line: 1 });
    expect(err.message).toContain('loop.xml');
  });

  it('reports errors inside included files with the file and its own positions', async () => {
    const err = await readError([main("<xi:include href='hosts/bad.xml'/>")], opts());
    expect(err).toMatchObject({ code: 'missing-attribute', source: path.join('hosts', 'bad.xml'), line: 3, column: 3 });
  });

  it('checks the included root', async () => {
    const err = await readError([main("<xi:include href='user-root.xml'/>")], opts());
    expect(err).toMatchObject({ code: 'wrong-root', source: 'user-root.xml', line: 1, column: 1 });
  });

  it('finds duplicate users across files', async () => {
    const host = `<server-data xmlns='urn:xmpp:pie:0' ${XI}><host jid='a.example'><user name='alice'/><xi:include href='hosts/alice-again.xml'/></host></server-data>`;
    const err = await readError([host], opts());
    expect(err).toMatchObject({ code: 'duplicate-user', source: path.join('hosts', 'alice-again.xml') });
  });

  it('applies the document size limit to included bytes too', async () => {
    const doc = main("<xi:include href='big.xml'/>");
    const err = await readError([doc], { ...opts(), maxDocumentBytes: 2000 });
    expect(err).toMatchObject({ code: 'document-too-large', source: 'big.xml' });
    await read(doc, { ...opts(), maxDocumentBytes: 10_000 });
  });
});
