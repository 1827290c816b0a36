/**
 * The web page's "bring your account from another provider" flow in a real browser (headless
 * Chromium through playwright-core): a real Prosody 0.12 is the other provider, reached over
 * c2s with STARTTLS and a certificate signed by a CA this test makes; a second Prosody 0.12 on
 * SQLite is the server xporta serves. The owner signs in, gives the old address and password,
 * watches the pull, reads the dry run, confirms, and a real client then gets the old roster and
 * vCard from the local account. A wrong old password gives a message and changes nothing; the
 * old password is in no file xporta wrote. axe-core checks each screen.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { DATA_KINDS, type UserRecord } from '../../src/records/model.js';
import { openStorage } from '../../src/storage/open.js';
import type { StorageBackend } from '../../src/storage/backend.js';
import { strings } from '../../src/web/strings.js';
import { chromiumAvailable, launchBrowser, seriousViolations, serveWebPage, type Browser } from '../support/browser.js';
import { filesUnder, REPO_ROOT } from '../support/paths.js';
import { populateAccount, type PopulateSummary } from '../support/populate.js';
import { createUser, prosodyAvailable, skipWithoutProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { installProsodyCertificate, makeTestCertificates } from '../support/test-ca.js';
import { getRoster, getVCard, loginAs } from '../support/xmpp-client.js';

const SCREENSHOTS = process.env.XPORTA_SCREENSHOTS === '1';
const SHOTS_DIR = join(REPO_ROOT, 'docs', 'screenshots');
const FRANK = { user: 'frank', password: 'frank-local-pw' };
const STEP_TIMEOUT_MS = 240_000;

const skip = skipWithoutProsody() || !chromiumAvailable();

async function records(storage: StorageBackend, user: string): Promise<string[]> {
  const out: UserRecord[] = [];
  for await (const r of storage.readUser({ host: 'localhost', user }, { include: new Set(DATA_KINDS) })) out.push(r);
  return out.map((r) => JSON.stringify(r)).sort();
}

describe.skipIf(skip)('the web page brings an account from another provider (Prosody 0.12 over STARTTLS)', () => {
  let dir: string;
  let oldServer: ProsodyHandle;
  let newServer: ProsodyHandle;
  let summary: PopulateSummary;
  let app: FastifyInstance;
  let storage: StorageBackend;
  let base: string;
  let browser: Browser;

  beforeAll(async () => {
    if (!prosodyAvailable()) throw new Error('Prosody is missing');
    dir = mkdtempSync(join(tmpdir(), 'xporta-web-pull-'));
    const certs = makeTestCertificates(dir);
    const oldDir = join(dir, 'old-prosody');
    installProsodyCertificate(certs, oldDir);
    [oldServer, newServer] = await Promise.all([startProsody({ storage: 'sqlite', dir: oldDir, extraModules: ['tls'] }), startProsody({ storage: 'sqlite' })]);
    summary = await populateAccount(oldServer, { messages: 30 });
    await createUser(newServer, FRANK.user, 'localhost', FRANK.password);
    const config = loadConfig({
      env: {
        XPORTA_DATA_DIR: join(dir, 'xporta'),
        XPORTA_LOG_LEVEL: 'silent',
        XPORTA_HOSTS: JSON.stringify({ localhost: { passwordHash: 'SHA-1' } }),
        XPORTA_STORAGE: JSON.stringify({ type: 'prosody-sql', driver: 'sqlite', database: join(newServer.dataDir, 'prosody.sqlite') }),
        XPORTA_OUTGOING: JSON.stringify({ allow: ['127.0.0.0/8'] }),
        XPORTA_XMPP_CLIENT: JSON.stringify({ caFile: certs.ca, services: [`localhost=127.0.0.1:${oldServer.c2sPort}`], pageSize: 7, timeoutMs: 10_000 }),
        XPORTA_AUTH__USER_TOKEN_SECRET: 'p'.repeat(40),
        XPORTA_WEB__ENABLED: 'true',
      },
      cwd: dir,
    });
    storage = await openStorage(config);
    ({ app, base } = await serveWebPage(config, storage));
    browser = await launchBrowser(90_000);
    if (SCREENSHOTS) mkdirSync(SHOTS_DIR, { recursive: true });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await Promise.allSettled([oldServer?.stop(), newServer?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function screen(page: Page, name: string, width: number): Promise<void> {
    expect(await seriousViolations(page), `axe on ${name} at ${width}px`).toEqual([]);
    if (SCREENSHOTS) await page.screenshot({ path: join(SHOTS_DIR, `${name}-${width === 390 ? 'phone' : 'desktop'}.png`), fullPage: true });
  }

  async function signIn(page: Page): Promise<void> {
    await page.goto(`${base}/`);
    await page.getByLabel(strings.jidLabel).fill(`${FRANK.user}@localhost`);
    await page.getByLabel(strings.passwordLabel).fill(FRANK.password);
    await page.getByRole('button', { name: strings.signInButton, exact: true }).click();
    await page.waitForURL(`${base}/`);
  }

  async function startPull(page: Page, jid: string, password: string): Promise<void> {
    await page.getByLabel(strings.pullJidLabel).fill(jid);
    await page.getByLabel(strings.pullPasswordLabel).fill(password);
    await page.getByRole('button', { name: strings.pullButton }).click();
  }

  it('refuses a wrong old password in words and changes nothing', async () => {
    const before = await records(storage, FRANK.user);
    const context = await browser.context(1280);
    const page = await context.newPage();
    await signIn(page);
    await page.goto(`${base}/import`);
    await page.getByRole('link', { name: strings.pullLink }).click();
    await page.waitForURL(`${base}/import/xmpp`);
    await screen(page, 'pull', 1280);
    await startPull(page, summary.alice.jid, 'not-the-old-password');
    // The page reloads itself while the pull runs, and shows the failure once it is known.
    await page.getByRole('alert').waitFor({ timeout: 60_000 });
    expect(await page.getByRole('alert').textContent()).toBe(strings.pullAuthFailed);
    expect(await page.getByLabel(strings.pullJidLabel).isVisible()).toBe(true);
    expect(await records(storage, FRANK.user)).toEqual(before);
    await context.close();
  }, STEP_TIMEOUT_MS);

  for (const width of [1280, 390]) {
    it(`pulls the old account, shows the dry run, imports on confirmation, and a real client gets the roster (${width} px)`, async () => {
      const context = await browser.context(width);
      const page = await context.newPage();
      await signIn(page);
      await page.goto(`${base}/import/xmpp`);
      if (width === 390) await screen(page, 'pull', 390);
      await startPull(page, summary.alice.jid, summary.alice.password);
      // Progress first (unless the pull is already done by the time the page loads), then the review.
      const progressOrReview = await Promise.race([
        page.locator('#pull-progress').waitFor({ timeout: 60_000 }).then(() => 'progress' as const),
        page.waitForURL(`${base}/import/review`, { timeout: 60_000 }).then(() => 'review' as const),
      ]);
      if (progressOrReview === 'progress') {
        expect(await page.locator('#pull-progress').textContent()).toMatch(/Messages read so far: \d+/);
        await screen(page, 'pull-progress', width);
        await page.waitForURL(`${base}/import/review`, { timeout: 120_000 });
      }
      const report = (await page.locator('#report').textContent()) ?? '';
      expect(await page.locator('main p').first().textContent()).toBe(strings.reviewIntroPulled(summary.alice.jid));
      expect(report).toContain(strings.plural(summary.roster.items.length, strings.fileContacts[0] ?? '', strings.fileContacts[1] ?? ''));
      expect(report).toContain(strings.plural(summary.archive.messages.length, strings.fileMessages[0] ?? '', strings.fileMessages[1] ?? ''));
      expect(await page.locator('#added-h').textContent()).toBe(strings.pullReviewAdd);
      await screen(page, 'pull-review', width);

      await page.getByLabel(width === 1280 ? strings.modeReplace : strings.modeMerge).check();
      await page.getByRole('button', { name: strings.confirmButton }).click();
      await page.waitForURL(`${base}/import/done`);
      expect(await page.locator('#notice').textContent()).toBe(strings.pullDoneIntro(summary.alice.jid));
      expect(await page.locator('#summary').textContent()).toContain(strings.plural(summary.archive.messages.length, strings.fileMessages[0] ?? '', strings.fileMessages[1] ?? ''));
      await context.close();

      // Frank's own password still opens the account; the roster and vCard came from the old one.
      const client = await loginAs(newServer, FRANK.user, FRANK.password);
      try {
        const roster = await getRoster(client);
        expect(roster.map((i) => i.jid).sort()).toEqual(summary.roster.items.map((i) => i.jid).sort());
        expect((await getVCard(client))?.getChildText('FN')).toBe('Alice Example');
      } finally {
        await client.close();
      }
      // The old password is in no file xporta wrote, and the spool is empty again.
      for (const file of filesUnder(join(dir, 'xporta'))) expect(readFileSync(file, 'utf8'), file).not.toContain(summary.alice.password);
      expect(readdirSync(join(dir, 'xporta', 'spool'))).toEqual([]);
    }, STEP_TIMEOUT_MS);
  }
});
