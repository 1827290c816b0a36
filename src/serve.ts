/**
 * Runs the service: storage, HTTP, signals. Shutdown on SIGTERM/SIGINT stops accepting
 * connections, lets streams in flight finish (up to limits.shutdownTimeoutMs), then closes storage.
 */
import type { Config } from './config.js';
import { buildApp } from './http/server.js';
import { clearSpool } from './http/spool.js';
import { resolveOperatorTokens } from './operator-token.js';
import { openStorage } from './storage/open.js';
import { XmppComponent } from './xmpp/component.js';

export async function serve(config: Config): Promise<void> {
  const { tokens, generated } = resolveOperatorTokens(config);
  const storage = await openStorage(config);
  await clearSpool(config.dataDir);
  let component: XmppComponent | undefined;
  const app = buildApp({
    config: { ...config, auth: { ...config.auth, tokens } },
    storage,
    ...(config.component.enabled ? { component: { connected: () => component?.connected() ?? false } } : {}),
  });
  if (config.component.enabled) {
    // Connects in the background and keeps retrying: the HTTP API serves whether or not it is up.
    component = new XmppComponent({ config, log: app.log.child({ module: 'xmpp' }) });
    component.start(app.ctx);
  }

  if (generated !== undefined) {
    // Printed once on purpose: only its hash is kept (dataDir/operator-token.json).
    process.stdout.write(
      `\nxporta: generated an operator token (shown only now; its SHA-256 is in ${config.dataDir}/operator-token.json):\n\n  ${generated}\n\n`,
    );
  }

  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: waiting for requests in flight');
    const timer = setTimeout(() => {
      app.log.error('shutdown timed out; exiting with requests still open');
      process.exit(1);
    }, config.limits.shutdownTimeoutMs);
    timer.unref();
    const componentStopped = (component?.stop() ?? Promise.resolve()).catch((err: unknown) => {
      app.log.warn({ err }, 'error while disconnecting the XMPP component');
    });
    componentStopped.then(() => app.close()).then(
      () => {
        app.log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        app.log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  await app.listen({ host: config.listen.host, port: config.listen.port });
}
