/**
 * Child process for host-import-crash.live.test.ts: a host import of small accounts into a
 * SQLite store (WAL), killed with SIGKILL by the test while it runs. argv: <database> <accounts>.
 */
import { ProsodySqlBackend } from '../../src/storage/prosody-sql/backend.js';
import { selectKinds } from '../../src/transfer/account-transfer.js';
import { importHostDocument } from '../../src/transfer/host-transfer.js';
import { syntheticHost } from '../../bench/host-synthetic.js';

const [database, accounts] = process.argv.slice(2);
if (database === undefined || accounts === undefined) throw new Error('usage: host-import-child <database> <accounts>');
const total = Number(accounts);
const backend = new ProsodySqlBackend({ dialect: 'sqlite', database, walMode: true, hosts: { localhost: { passwordHash: 'SHA-1' } }, serverVersion: '0.12' });
// Every account of the synthetic host has 8 records.
const result = await importHostDocument(backend, 'localhost', syntheticHost(total), {
  mode: 'merge',
  dryRun: false,
  include: selectKinds(),
  createAccount: true,
  total,
  sizes: new Array<number>(total).fill(8),
  onUser: (_user, progress) => {
    if (progress.done % 100 === 0) process.stdout.write(`${progress.done}\n`);
  },
});
await backend.close();
process.stdout.write(`done ${result.progress.done} ${result.progress.failed}\n`);
