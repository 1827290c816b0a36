/**
 * /metrics from prom-client on the real app after real transfers (SQLite store): the output
 * passes a strict exposition-format reader (test/support/prometheus-text.ts), keeps the families
 * dashboards already use, and has the new ones: process and event-loop metrics, durations per
 * operation, dry runs apart from imports, bytes in and out, host transfers, job states.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { buildApp } from '../../src/http/server.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import { openStorage } from '../../src/storage/open.js';
import { accountDocument } from '../support/documents.js';
import { parsePrometheusText, type Family } from '../support/prometheus-text.js';

const TOKEN = 'metrics-operator-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const xml = { ...auth, 'content-type': 'application/xml' };

function value(family: Family | undefined, name: string, labels: Record<string, string>): number {
  const sample = family?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return sample?.value ?? 0;
}

describe('/metrics', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-metrics-'));
  let app: ReturnType<typeof buildApp>;
  let families: Map<string, Family>;
  let uploaded = 0;

  beforeAll(async () => {
    const config = loadConfig({
      env: { XPORTA_DATA_DIR: dir, XPORTA_LOG_LEVEL: 'silent', XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'all', sha256: sha256Hex(TOKEN) }]) },
      cwd: dir,
    });
    app = buildApp({ config, storage: await openStorage(config), logger: false });
    await app.ready();
    const alice = accountDocument({ host: 'localhost', user: 'alice', password: 'pw' });
    uploaded = Buffer.byteLength(alice);
    const dry = await app.inject({ method: 'PUT', url: '/v1/users/alice%40localhost/import?createAccount=true&dryRun=true', headers: xml, payload: alice });
    expect(dry.statusCode).toBe(200);
    const real = await app.inject({ method: 'PUT', url: '/v1/users/alice%40localhost/import?createAccount=true', headers: xml, payload: alice });
    expect(real.statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v1/users/alice%40localhost/export', headers: auth })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/v1/users/alice%40localhost/exports', headers: auth })).statusCode).toBe(201);
    const host = await app.inject({ method: 'GET', url: '/v1/hosts/localhost/export', headers: auth });
    expect(host.statusCode).toBe(200);
    const job = await app.inject({ method: 'PUT', url: '/v1/hosts/localhost/import?async=true&dryRun=true', headers: xml, payload: host.rawPayload });
    expect(job.statusCode).toBe(202);
    const location = String(job.headers.location);
    for (let i = 0; i < 100; i++) {
      const state = (await app.inject({ method: 'GET', url: location, headers: auth })).json<{ state: string }>().state;
      if (state !== 'running') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const res = await app.inject({ method: 'GET', url: '/metrics', headers: auth });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    families = parsePrometheusText(res.body);
  });

  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the families dashboards already use', () => {
    for (const name of ['xporta_http_requests_total', 'xporta_bytes_streamed_total', 'xporta_records_total', 'xporta_errors_total', 'xporta_imports_in_progress', 'xporta_component_connected']) {
      expect(families.has(name), name).toBe(true);
    }
    expect(families.get('xporta_records_total')?.type).toBe('counter');
    expect(value(families.get('xporta_imports_in_progress'), 'xporta_imports_in_progress', {})).toBe(0);
    expect(value(families.get('xporta_http_requests_total'), 'xporta_http_requests_total', { method: 'PUT', route: '/v1/users/:jid/import', status: '200' })).toBe(2);
  });

  it('has process and event-loop metrics', () => {
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_gc_duration_seconds']) {
      expect(families.has(name), name).toBe(true);
    }
  });

  it('has duration histograms per operation and per route', () => {
    const durations = families.get('xporta_operation_duration_seconds');
    expect(durations?.type).toBe('histogram');
    for (const operation of ['import', 'dry_run', 'export', 'export_file', 'host_export', 'host_dry_run']) {
      expect(value(durations, 'xporta_operation_duration_seconds_count', { operation, outcome: 'ok' }), operation).toBe(1);
    }
    expect(families.get('xporta_http_request_duration_seconds')?.type).toBe('histogram');
    expect(value(families.get('xporta_http_request_duration_seconds'), 'xporta_http_request_duration_seconds_count', { method: 'GET', route: '/v1/users/:jid/export' })).toBe(1);
  });

  it('counts dry runs apart from imports, bytes in and out, host transfers and job states', () => {
    expect(value(families.get('xporta_imports_total'), 'xporta_imports_total', { source: 'upload', outcome: 'ok' })).toBe(1);
    expect(value(families.get('xporta_dry_runs_total'), 'xporta_dry_runs_total', { scope: 'user', outcome: 'ok' })).toBe(1);
    expect(value(families.get('xporta_dry_runs_total'), 'xporta_dry_runs_total', { scope: 'host', outcome: 'ok' })).toBe(1);
    const records = families.get('xporta_records_total');
    expect(value(records, 'xporta_records_total', { direction: 'import', kind: 'credentials' })).toBe(value(records, 'xporta_records_total', { direction: 'dry_run', kind: 'credentials' }));
    const bytes = families.get('xporta_bytes_streamed_total');
    // Received: the two user uploads and the host document; sent: two exports, the file and the host export.
    expect(value(bytes, 'xporta_bytes_streamed_total', { direction: 'import' })).toBeGreaterThan(2 * uploaded);
    expect(value(bytes, 'xporta_bytes_streamed_total', { direction: 'export' })).toBeGreaterThan(0);
    const transfers = families.get('xporta_host_transfers_total');
    expect(value(transfers, 'xporta_host_transfers_total', { direction: 'export', dry_run: 'false', outcome: 'ok' })).toBe(1);
    expect(value(transfers, 'xporta_host_transfers_total', { direction: 'import', dry_run: 'true', outcome: 'ok' })).toBe(1);
    const jobs = families.get('xporta_jobs_total');
    expect(value(jobs, 'xporta_jobs_total', { type: 'host-import', state: 'started' })).toBe(1);
    expect(value(jobs, 'xporta_jobs_total', { type: 'host-import', state: 'succeeded' })).toBe(1);
  });
});

describe('the exposition-format reader', () => {
  it('refuses what promtool refuses', () => {
    expect(() => parsePrometheusText('x 1\n')).toThrow(/no TYPE/);
    expect(() => parsePrometheusText('# TYPE x counter\nx{a="b} 1\n')).toThrow();
    expect(() => parsePrometheusText('# TYPE x gauge\nx one\n')).toThrow(/not a number/);
    expect(() => parsePrometheusText('# TYPE x gauge\nx 1\nx 2\n')).toThrow(/repeated/);
    expect(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 0\n')).toThrow(/cumulative/);
    expect(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="1"} 1\nh_count 1\n')).toThrow(/\+Inf/);
    expect(parsePrometheusText('# HELP x says \\\\ "hi"\n# TYPE x gauge\nx{a="q\\"\\n"} -1.5e3\n').get('x')?.samples[0]).toEqual({ name: 'x', labels: { a: 'q"\n' }, value: -1500 });
  });
});
