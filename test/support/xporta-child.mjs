// Runs requests against an xporta (the built dist/) inside this process and prints, as one JSON
// line, each answer and the process's RSS when idle and at its peak. Used by memory-bound tests:
// the hostile case runs here, away from the test runner's own heap.
//
// argv[2]: JSON { dir, env, requests: [{ method, url, headers, payload, payloadBase64, probe }] }
// where `probe` is { afterMs, method, url, headers }: a request sent while the main one runs.
import { Buffer } from 'node:buffer';
import { setTimeout } from 'node:timers';
import { loadConfig } from '../../dist/config/config.js';
import { buildApp } from '../../dist/http/server.js';
import { openStorage } from '../../dist/storage/open.js';

const spec = JSON.parse(process.argv[2]);
const config = loadConfig({ env: spec.env, cwd: spec.dir });
const storage = await openStorage(config);
const app = buildApp({ config, storage, logger: false });
await app.ready();

const results = [];
/** A body to hand back: a Prometheus exposition keeps only xporta's own families (the process
 * metrics before them would push them out of any cut); anything else its first 4,000 characters. */
function shortBody(res) {
  const type = String(res.headers['content-type'] ?? '');
  if (type.startsWith('text/plain') && res.body.includes('# TYPE xporta_')) {
    return res.body.split('\n').filter((line) => /^(# (HELP|TYPE) )?xporta_/.test(line)).join('\n');
  }
  return res.body.slice(0, 4000);
}

let idleRss = 0;
for (const r of spec.requests) {
  if (r.measureFromHere) {
    globalThis.gc?.();
    idleRss = process.memoryUsage().rss;
  }
  const started = Date.now();
  let probe;
  const probeDone = r.probe
    ? new Promise((resolve) => setTimeout(resolve, r.probe.afterMs)).then(async () => {
        const res = await app.inject({ method: r.probe.method, url: r.probe.url, headers: r.probe.headers });
        probe = { status: res.statusCode, body: res.body };
      })
    : Promise.resolve();
  const payload = r.payloadBase64 !== undefined ? Buffer.from(r.payloadBase64, 'base64') : r.payload;
  const res = await app.inject({ method: r.method, url: r.url, headers: r.headers, ...(payload !== undefined ? { payload } : {}) });
  await probeDone;
  results.push({ status: res.statusCode, body: shortBody(res), ms: Date.now() - started, probe, slotsInUse: app.ctx.importSlots.inUse });
}
const peakRss = process.resourceUsage().maxRSS * 1024;
await app.close();
console.log(JSON.stringify({ idleRss, peakRss, results }));
