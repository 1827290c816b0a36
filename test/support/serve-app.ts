/**
 * The HTTP app in a process of its own, for tests that read its memory (/proc/<pid>/status):
 * configured from XPORTA_* variables like `xporta serve`, listening on a free loopback port,
 * which it prints as `listening <port>`. Run with vite-node.
 */
import { loadConfig } from '../../src/config/config.js';
import { buildApp } from '../../src/http/server.js';
import { openStorage } from '../../src/storage/open.js';

const config = loadConfig({ env: process.env, cwd: process.cwd() });
const app = buildApp({ config, storage: await openStorage(config), logger: false });
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
