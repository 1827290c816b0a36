/**
 * Child process for files-cleanup.test.ts: imports a large account into a Prosody file store and
 * is killed with SIGKILL by the test while it stages. argv: <data_path> <messages>.
 */
import { Readable } from 'node:stream';
import { ProsodyFilesBackend } from '../../src/storage/prosody-files/backend.js';
import { importUserDocument, selectKinds } from '../../src/transfer/account-transfer.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { accountDocument } from './documents.js';

const [path, messages] = process.argv.slice(2);
if (path === undefined || messages === undefined) throw new Error('usage: files-import-child <data_path> <messages>');
// A low de-duplication threshold, so that the scratch file exists while staging too.
const backend = new ProsodyFilesBackend({ path, hosts: { localhost: { passwordHash: 'SHA-1' } }, seenInMemory: 1000 });
const doc = accountDocument({ host: 'localhost', user: 'alice', password: 'new', archiveCount: Number(messages) });
process.stdout.write('staging\n');
await importUserDocument(backend, { host: 'localhost', user: 'alice' }, readDocument(Readable.from([Buffer.from(doc)])), {
  mode: 'merge',
  dryRun: false,
  include: selectKinds(),
  createAccount: true,
});
process.stdout.write('done\n');
