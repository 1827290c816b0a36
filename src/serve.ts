/**
 * Runs the service: storage, HTTP, signals. Shutdown on SIGTERM/SIGINT stops accepting
 * connections, lets streams in flight finish (up to limits.shutdownTimeoutMs), then closes storage.
 * SIGHUP reloads the configuration's operator tokens, user-token keys, token quota and log level;
 * other fields need a restart, and a configuration that fails to load is logged and ignored.
 */
import { readFileSync } from 'node:fs';
import type { Config } from './config/config.js';
import { buildApp } from './http/server.js';
import { clearSpool } from './core/spool.js';
import { exportWorkersFor } from './core/export-workers.js';
import { handOverGeneratedToken, resolveOperatorTokens } from './core/auth/operator-token.js';
import { openStorage } from './storage/open.js';
import { XmppComponent } from './xmpp/component.js';
import { webPage } from './web/plugin.js';

function packageVersion(): string {
  try {
    // package.json sits at the package root, next to both src/ and dist/.
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export async function serve(config: Config, reloadConfig?: () => Config): Promise<void> {
  const { tokens, generated } = resolveOperatorTokens(config);
  const storage = await openStorage(config);
  await clearSpool(config.dataDir);
  const exportWorkers = exportWorkersFor(config);
  let component: XmppComponent | undefined;
  const app = buildApp({
    config: { ...config, auth: { ...config.auth, tokens } },
    storage,
    ...(exportWorkers ? { exportWorkers } : {}),
    ...(config.component.enabled ? { component: { connected: () => component?.connected() ?? false } } : {}),
  });
  // The owners' web page is a face of its own beside the API, on the same listener.
  if (config.web.enabled) app.register(webPage, { ctx: app.ctx });
  if (config.component.enabled) {
    // Connects in the background and keeps retrying: the HTTP API serves whether or not it is up.
    component = new XmppComponent({ config, log: app.log.child({ module: 'xmpp' }) });
    component.start(app.ctx);
  }

  const handOver = (token: string): void => {
    // To a terminal, or to a private file: never to a log that journald or `docker logs` keeps.
    const message = handOverGeneratedToken(config, token, process.stdout.isTTY === true);
    (process.stdout.isTTY ? process.stdout : process.stderr).write(message);
  };
  if (generated !== undefined) handOver(generated);

  const tokenNames = (): string[] => [
    ...app.ctx.auth.configTokens().map((t) => t.name),
    ...(app.ctx.tokens?.listOperatorTokens().filter((t) => t.revokedAt === undefined).map((t) => `${t.name} (${t.id})`) ?? []),
  ];

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
  process.on('SIGHUP', () => {
    if (!reloadConfig) {
      app.log.info({ signal: 'SIGHUP' }, 'no configuration source to reload; ignored');
      return;
    }
    try {
      const next = reloadConfig();
      const resolved = resolveOperatorTokens(next);
      if (resolved.generated !== undefined) handOver(resolved.generated);
      app.ctx.auth.reload(resolved.tokens, next.auth.userTokenSecret, next.auth.previousUserTokenSecrets);
      app.ctx.quota.setLimit(next.auth.requestsPerMinutePerToken);
      app.log.level = next.logLevel;
      app.log.info({ signal: 'SIGHUP', logLevel: next.logLevel, tokens: tokenNames() }, 'configuration reloaded (tokens, user-token keys, quota, log level)');
    } catch (err) {
      app.log.error({ signal: 'SIGHUP', error: err instanceof Error ? err.message : String(err) }, 'configuration not reloaded; the running one stays');
    }
  });

  await app.listen({ host: config.listen.host, port: config.listen.port });
  const { storage: storageConfig } = config;
  app.log.info(
    {
      version: packageVersion(),
      backend: storageConfig.type,
      driver: 'driver' in storageConfig ? storageConfig.driver : 'files',
      hosts: Object.keys(config.hosts),
      tokens: tokenNames(),
      userTokenKey: config.auth.userTokenSecret !== undefined ? 'configured' : 'per process',
      trustedProxies: config.trustedProxies,
      audit: config.audit.file,
      component: config.component.enabled ? { enabled: true, domain: config.component.domain, service: config.component.service } : { enabled: false },
      web: config.web.enabled ? `${config.publicUrl.replace(/\/+$/, '')}/web/` : false,
    },
    'xporta started',
  );
}
