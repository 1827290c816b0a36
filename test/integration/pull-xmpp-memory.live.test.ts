/**
 * `xporta pull` of a large archive from a real Prosody (STARTTLS, test CA), run as a child
 * process under /usr/bin/time: every archived message arrives, and the peak RSS stays within a
 * generous bound, since the archive is read one MAM page at a time and streamed out. The
 * archive is put into Prosody's SQLite store with xporta's own import first (sending that many
 * messages through clients would take minutes).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openStorage } from '../../src/storage/open.js';
import { importUserDocument, selectKinds } from '../../src/transfer/account-transfer.js';
import { readDocument } from '../../src/xep0227/reader.js';
import { accountDocument } from '../support/documents.js';
import { describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { installProsodyCertificate, makeTestCertificates } from '../support/test-ca.js';
import { REPO_ROOT } from '../support/paths.js';

const root = REPO_ROOT;
const cli = join(root, 'dist', 'cli.js');
const MESSAGES = 20_000;
const PASSWORD = 'memory-test-password';
/**
 * Peak RSS allowed for the whole CLI process. An idle Node with xporta loaded is about 60 MB;
 * the bound leaves room for V8's heap growth and one MAM page, not for the archive.
 */
const PEAK_RSS_BOUND_MB = 160;

describeWithProsody('xporta pull of a large archive (child process, peak RSS)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-pull-mem-'));
  let prosody: ProsodyHandle;
  let ca: string;

  beforeAll(async () => {
    if (!existsSync(cli)) {
      const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
      if (build.status !== 0) throw new Error('build failed');
    }
    const certs = makeTestCertificates(dir);
    ca = certs.ca;
    const prosodyDir = join(dir, 'prosody');
    installProsodyCertificate(certs, prosodyDir);
    prosody = await startProsody({ storage: 'sqlite', dir: prosodyDir, extraModules: ['tls'] });
    const config = loadConfig({
      env: { XPORTA_DATA_DIR: join(dir, 'xporta'), XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'sqlite', database: join(prosodyDir, 'data', 'prosody.sqlite') }) },
      cwd: dir,
    });
    const storage = await openStorage(config);
    try {
      const doc = accountDocument({ host: 'localhost', user: 'alice', password: PASSWORD, archiveCount: MESSAGES });
      const report = await importUserDocument(storage, { host: 'localhost', user: 'alice' }, readDocument(Readable.from([Buffer.from(doc)])), {
        mode: 'replace',
        dryRun: false,
        include: selectKinds(),
        createAccount: true,
      });
      expect(report.counts.archive).toBe(MESSAGES);
    } finally {
      await storage.close();
    }
  }, 240_000);

  afterAll(async () => {
    await prosody?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`streams ${MESSAGES} archived messages out with a bounded peak RSS`, async () => {
    const passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, PASSWORD, { mode: 0o600 });
    const out = join(dir, 'alice.xml');
    const timing = join(dir, 'time.txt');
    const child = spawn(
      '/usr/bin/time',
      ['-f', '%M %e %U %S', '-o', timing, process.execPath, '--max-semi-space-size=2', cli, 'pull', 'alice@localhost', '--password-file', passwordFile, '--ca-file', ca, '--server', `127.0.0.1:${prosody.c2sPort}`, '--include', 'archive'],
      { cwd: dir, env: { PATH: process.env.PATH, XPORTA_DATA_DIR: join(dir, 'xporta'), XPORTA_OUTGOING: JSON.stringify({ allow: ['127.0.0.1'] }), XPORTA_XMPP_CLIENT: JSON.stringify({ pageSize: 250 }) } },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.pipe(createWriteStream(out));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code, stderr).toBe(0);

    let archived = 0;
    for await (const e of readDocument(createReadStream(out))) if (e.kind === 'archive') archived++;
    expect(archived).toBe(MESSAGES);

    const [peakKb, seconds, user, system] = readFileSync(timing, 'utf8').trim().split('\n').at(-1)?.split(' ').map(Number) ?? [];
    const peakMb = (peakKb ?? 0) / 1024;
    // Wall time against xporta's own CPU time: the rest is the server paging and the round trips.
    console.log(`[pull memory] ${MESSAGES} messages in ${seconds ?? '?'} s (xporta CPU ${((user ?? 0) + (system ?? 0)).toFixed(1)} s), peak RSS ${peakMb.toFixed(0)} MB`);
    expect(peakMb).toBeLessThan(PEAK_RSS_BOUND_MB);
  }, 300_000);
});
