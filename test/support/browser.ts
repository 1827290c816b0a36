/**
 * Headless Chromium (Debian's `chromium` package) driven by playwright-core, for the web page's
 * browser tests (playwright-core gives each launch a fresh user-data-dir). A missing Chromium fails under CI and skips elsewhere, like a missing Prosody.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { Config } from '../../src/config/config.js';
import { buildApp } from '../../src/http/server.js';
import type { StorageBackend } from '../../src/storage/backend.js';
import { webPage } from '../../src/web/plugin.js';
import { binaryAvailable, isCI } from './prosody.js';

export const CHROMIUM = process.env.XPORTA_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** True when Chromium can run here; throws under CI when it cannot. */
export function chromiumAvailable(): boolean {
  if (binaryAvailable(CHROMIUM)) return true;
  const message = `${CHROMIUM} is not installed (apt-get install chromium; scripts/install-test-deps.sh does)`;
  if (isCI) throw new Error(`${message}; CI is set, so the browser tests fail instead of skipping`);
  console.warn(`[xporta tests] skipping browser tests: ${message}`);
  return false;
}

export interface Browser {
  /** A fresh context (cookies apart) at this viewport width. */
  context(width: number): Promise<BrowserContext>;
  close(): Promise<void>;
}

/** Chromium; playwright-core gives every launch a fresh temporary user-data-dir and removes it on close. */
export async function launchBrowser(stepTimeoutMs = 30_000): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  return {
    async context(width) {
      const context = await browser.newContext({ viewport: { width, height: width < 600 ? 844 : 900 }, acceptDownloads: true });
      context.setDefaultTimeout(stepTimeoutMs);
      context.setDefaultNavigationTimeout(stepTimeoutMs);
      return context;
    },
    close: () => browser.close(),
  };
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  readonly id: string;
  readonly impact: string | null;
  readonly help: string;
  readonly nodes: readonly { readonly target: readonly string[] }[];
}

/** axe-core's serious and critical violations on the page as it is (WCAG 2 A and AA rules). */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  // Evaluated through the DevTools protocol, which the page's CSP does not govern.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: AxeViolation[] }> } }).axe;
    return axe.run((globalThis as unknown as { document: unknown }).document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
  });
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** xporta's HTTP app with the web page registered, listening on a loopback port; `base` is the page's URL. */
export async function serveWebPage(config: Config, storage: StorageBackend): Promise<{ app: ReturnType<typeof buildApp>; base: string }> {
  const app = buildApp({ config, storage, logger: false });
  app.register(webPage, { ctx: app.ctx });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  return { app, base: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/web` };
}
