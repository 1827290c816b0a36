/**
 * An import into another JID than the document's: roster subscriptions the contacts gave the
 * old JID are not claimed for the new one (as the XEP-0283 move flow does), the report lists
 * the contacts to ask, and --keep-subscriptions keeps them. On the embedded SQLite store.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runExport, runImport } from '../../src/cli/commands.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import type { UserImportReport } from '../../src/transfer/account-transfer.js';
import { accountDocument } from '../support/documents.js';

async function exportText(config: Config, jid: string): Promise<string> {
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  await runExport(config, { target: jid, include: 'roster' }, out);
  return text;
}

describe('import into another JID', () => {
  let dir: string;
  let config: Config;
  let file: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xporta-rename-'));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ dataDir: dir, hosts: { localhost: {} }, audit: { file: join(dir, 'audit.log') } }));
    config = loadConfig({ configPath: join(dir, 'config.json'), env: {} });
    file = join(dir, 'alice.xml');
    // bob: both, carol: to, romeo: none + ask, dave: a pending request.
    await writeFile(file, accountDocument({ host: 'example.net', user: 'alice', password: 'pw' }));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('imports the roster without subscriptions and lists the contacts to ask', async () => {
    const report: UserImportReport = await runImport(config, { jid: 'zoe@localhost', file, createAccount: true }, Readable.from([]));
    expect(report.contactsToAsk).toEqual(['bob@example.net', 'carol@example.org', 'dave@example.com', 'romeo@montague.example']);
    expect(report.warnings.join('\n')).toMatch(/4 contact\(s\) approved subscriptions of alice@example\.net, not of zoe@localhost/);
    const roster = await exportText(config, 'zoe@localhost');
    expect(roster).toContain("<item jid='bob@example.net' name='Bob' subscription='none'><group>Friends</group><group>Work</group></item>");
    expect(roster).not.toMatch(/subscription='(both|to|from)'|ask=|type='subscribe'/);
  });

  it('keeps them with keepSubscriptions, and an import into the same JID is unchanged', async () => {
    const kept = await runImport(config, { jid: 'zoe@localhost', file, createAccount: true, keepSubscriptions: true }, Readable.from([]));
    expect(kept.contactsToAsk).toBeUndefined();
    expect(await exportText(config, 'zoe@localhost')).toContain("subscription='both'");

    await writeFile(file, accountDocument({ host: 'localhost', user: 'alice', password: 'pw' }));
    const same = await runImport(config, { jid: 'alice@localhost', file, createAccount: true }, Readable.from([]));
    expect(same.contactsToAsk).toBeUndefined();
    expect(await exportText(config, 'alice@localhost')).toContain("subscription='both'");
  });
});
