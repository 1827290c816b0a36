/**
 * The routes Fastify registers and the operations openapi.yaml documents are the same, and each
 * route's declared schema (src/http/schemas/) says what the contract says about its path and query
 * parameters and its JSON body: names, required, types, enums and the other constraints. Then, that
 * a request breaking a schema is a 400 problem, on an upload before its body is read.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { sha256Hex } from '../../src/core/auth/operator-token.js';
import { BOOLEAN_QUERY, INTEGER_QUERY, type JsonSchema, type RouteSchema } from '../../src/http/schemas/json-schema.js';
import { routeSchemas } from '../../src/http/schemas/routes.js';
import { buildApp } from '../../src/http/server.js';
import { openStorage } from '../../src/storage/open.js';
import { ContractChecker, resolveRef, specOperations, type SpecOperation } from '../support/openapi.js';
import { trickleRequest } from '../support/raw-http.js';

const ALL = 'operator-all-secret';
const PROBLEM = 'application/problem+json';
const document = new ContractChecker().document;
const operations = specOperations(document);

interface RegisteredRoute {
  readonly method: string;
  /** In the contract's spelling: `/v1/users/{jid}/export`. */
  readonly path: string;
  readonly schema: RouteSchema | undefined;
  readonly upload: boolean;
}

/** The keywords compared; descriptions, examples and defaults are documentation only. */
const FACETS = ['type', 'enum', 'const', 'format', 'pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'minItems', 'maxItems', 'additionalProperties'] as const;

/** A schema reduced to what validation depends on, `$ref`s resolved. */
function shape(schema: unknown): Record<string, unknown> {
  const s = resolveRef<Record<string, unknown>>(document, (schema ?? {}) as Record<string, unknown>);
  const out: Record<string, unknown> = {};
  for (const facet of FACETS) if (s[facet] !== undefined) out[facet] = s[facet];
  if (s.items !== undefined) out.items = shape(s.items);
  if (s.properties !== undefined) {
    out.properties = Object.fromEntries(Object.entries(s.properties as Record<string, unknown>).map(([name, sub]) => [name, shape(sub)]));
  }
  if (Array.isArray(s.required)) out.required = [...(s.required as string[])].sort();
  return out;
}

/**
 * A declared query parameter as the contract types it: query strings are text, so booleans and
 * integers are declared as their spellings. An integer's range is its route's to check.
 */
function queryShape(declared: JsonSchema): Record<string, unknown> {
  if (declared === BOOLEAN_QUERY) return { type: 'boolean' };
  if (declared === INTEGER_QUERY) return { type: 'integer' };
  return shape(declared);
}

function specQueryShape(schema: unknown): Record<string, unknown> {
  const s = shape(schema);
  return s.type === 'integer' ? { type: 'integer' } : s;
}

let app: FastifyInstance;
let dir: string;
const routes: RegisteredRoute[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xporta-route-schemas-'));
  const config = loadConfig({
    env: {
      XPORTA_DATA_DIR: dir,
      XPORTA_LOG_LEVEL: 'silent',
      XPORTA_AUTH__USER_TOKEN_SECRET: 'u'.repeat(40),
      XPORTA_AUTH__TOKENS: JSON.stringify([{ name: 'all', sha256: sha256Hex(ALL), scopes: ['export', 'import', 'admin'], hosts: ['*'] }]),
    },
    cwd: dir,
  });
  app = buildApp({ config, storage: await openStorage(config), logger: false });
  // The route plugins load at ready(): a hook added now sees every route they declare.
  app.addHook('onRoute', (route: RouteOptions) => {
    for (const method of [route.method].flat()) {
      routes.push({
        method,
        path: route.url.replace(/:([A-Za-z]+)/g, '{$1}'),
        schema: route.schema as RouteSchema | undefined,
        upload: route.config?.upload === true,
      });
    }
  });
  await app.ready();
});

afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Fastify adds a HEAD beside every GET; CORS preflights are documented in prose. */
function documentedRoutes(): RegisteredRoute[] {
  return routes.filter((r) => r.method !== 'OPTIONS' && !(r.method === 'HEAD' && routes.some((g) => g.method === 'GET' && g.path === r.path)));
}

function routeOf(op: SpecOperation): RegisteredRoute {
  const route = routes.find((r) => r.method === op.method && r.path === op.path);
  if (!route) throw new Error(`${op.method} ${op.path} is documented but not registered`);
  return route;
}

describe('routes and openapi.yaml', () => {
  it('register exactly the documented operations', () => {
    const registered = documentedRoutes().map((r) => `${r.method} ${r.path}`).sort();
    const documented = operations.map((op) => `${op.method} ${op.path}`).sort();
    expect(registered).toEqual(documented);
  });

  it('declare, on every route, the schema named by its operationId', () => {
    for (const op of operations) {
      const route = routeOf(op);
      expect(op.operationId in routeSchemas, `${op.operationId} has no schema in src/http/schemas/routes.ts`).toBe(true);
      expect(route.schema, `${op.method} ${op.path} declares another schema than routeSchemas.${op.operationId}`).toBe(routeSchemas[op.operationId as keyof typeof routeSchemas]);
    }
    const used = new Set(operations.map((op) => op.operationId));
    expect(Object.keys(routeSchemas).filter((id) => !used.has(id))).toEqual([]);
  });

  it.each(operations.map((op) => [`${op.method} ${op.path}`, op] as const))('%s: path parameters match', (_name, op) => {
    const declared = routeOf(op).schema?.params;
    const documented = op.parameters.filter((p) => p.in === 'path');
    const inRoute = [...op.path.matchAll(/\{([A-Za-z]+)\}/g)].map((m) => m[1]!);
    expect(documented.map((p) => p.name).sort(), 'documented path parameters').toEqual([...inRoute].sort());
    expect(Object.keys(declared?.properties ?? {}).sort(), 'declared path parameters').toEqual([...inRoute].sort());
    for (const p of documented) {
      expect(p.required, `${p.name} must be required`).toBe(true);
      expect(declared?.required ?? [], `${p.name} declared required`).toContain(p.name);
      expect(shape(declared?.properties[p.name]), `path parameter ${p.name}`).toEqual(shape(p.schema));
    }
  });

  it.each(operations.map((op) => [`${op.method} ${op.path}`, op] as const))('%s: query parameters match', (_name, op) => {
    const declared = routeOf(op).schema?.querystring;
    const documented = op.parameters.filter((p) => p.in === 'query');
    expect(Object.keys(declared?.properties ?? {}).sort(), 'declared query parameters').toEqual(documented.map((p) => p.name).sort());
    for (const p of documented) {
      expect(declared?.required?.includes(p.name) ?? false, `${p.name} required`).toBe(p.required === true);
      expect(queryShape(declared!.properties[p.name]!), `query parameter ${p.name}`).toEqual(specQueryShape(p.schema));
    }
  });

  it.each(operations.map((op) => [`${op.method} ${op.path}`, op] as const))('%s: the JSON body matches; uploads declare none', (_name, op) => {
    const route = routeOf(op);
    const declared = route.schema?.body;
    const content = op.requestBody?.content ?? {};
    const json = content['application/json'];
    const upload = Object.keys(content).some((type) => type.endsWith('xml') || type === 'multipart/form-data');
    expect(route.upload, 'config.upload').toBe(upload);
    if (json === undefined) {
      expect(declared, 'a body schema for an operation with no JSON body').toBeUndefined();
      return;
    }
    expect(declared, 'the JSON body schema').toBeDefined();
    const optional = Array.isArray(declared!.type);
    expect(optional ? ['object', 'null'] : declared!.type, 'an optional body also accepts none').toEqual(optional ? declared!.type : 'object');
    expect(!optional, 'body required').toBe(op.requestBody?.required === true);
    expect({ ...shape(declared), type: 'object' }).toEqual(shape(json.schema));
  });

  it.each(operations.map((op) => [`${op.method} ${op.path}`, op] as const))('%s: documents the 400 its schema can answer', (_name, op) => {
    const schema = routeOf(op).schema ?? {};
    const params = Object.values(schema.params?.properties ?? {});
    const canRefuse = schema.body !== undefined || schema.querystring !== undefined || params.some((p) => p.pattern !== undefined || p.enum !== undefined || p.format !== undefined);
    if (canRefuse) expect(Object.keys(op.responses)).toContain('400');
  });
});

describe('a request that breaks its route schema', () => {
  async function problemOf(res: { statusCode: number; headers: Record<string, unknown>; body: string }): Promise<{ type: string; detail: string }> {
    expect(res.statusCode, res.body).toBe(400);
    expect(String(res.headers['content-type'])).toContain(PROBLEM);
    return JSON.parse(res.body) as { type: string; detail: string };
  }
  const auth = { authorization: `Bearer ${ALL}` };

  it('is a 400 bad-request problem naming the parameter or field, never its value', async () => {
    const jobs = await problemOf(await app.inject({ method: 'GET', url: '/v1/jobs?limit=ten', headers: auth }));
    expect(jobs).toMatchObject({ type: 'urn:xporta:problem:bad-request' });
    expect(jobs.detail).toMatch(/query parameter limit/);

    const mode = await problemOf(await app.inject({ method: 'POST', url: '/v1/users/alice%40localhost/exports?include=a&include=b', headers: auth }));
    expect(mode.detail).toMatch(/query parameter include must be a string/);

    const id = await problemOf(await app.inject({ method: 'GET', url: '/v1/exports/not-an-export-id', headers: auth }));
    expect(id.detail).toMatch(/path parameter id/);

    const secret = 'hunter2-secret';
    const typed = await problemOf(
      await app.inject({ method: 'POST', url: '/v1/users/alice%40localhost/import-from-xmpp', headers: auth, payload: { jid: 'alice@old.example', password: secret, dryRun: 'true' } }),
    );
    expect(typed.detail).toBe('field dryRun must be true or false');
    const unknown = await problemOf(
      await app.inject({ method: 'POST', url: '/v1/users/alice%40localhost/import-from', headers: auth, payload: { url: 'https://old.example/x', token: secret, extra: 1 } }),
    );
    expect(unknown.detail).toMatch(/^unknown field "extra" \(allowed: url, token, mode/);
    const missing = await problemOf(await app.inject({ method: 'POST', url: '/v1/users/alice%40localhost/moved', headers: auth, payload: { importUrl: 'https://new.example/x' } }));
    expect(missing.detail).toBe('field newJid is required');
    const scope = await problemOf(await app.inject({ method: 'POST', url: '/v1/tokens', headers: auth, payload: { scopes: ['root'] } }));
    expect(scope.detail).toBe('field scopes.0 must be one of export, import, admin');
    expect(typed.detail + unknown.detail).not.toContain(secret);
  });

  it('accepts an optional body left out', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/tokens', headers: auth });
    expect(res.statusCode, res.body).toBe(201);
  });

  it('is answered on an upload before a byte of its body is read, and the connection closes', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const head =
      'PUT /v1/users/alice%40localhost/import?mode=overwrite HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
      `Authorization: Bearer ${ALL}\r\nContent-Type: application/xml\r\nContent-Length: 100000000\r\n\r\n`;
    // Nothing of the announced 100 MB is sent: an answer at all shows the body was not waited for.
    const answer = await trickleRequest(port, head, '', '', 1000, 10_000);
    expect(answer.status, answer.body).toBe(400);
    expect(answer.headers['content-type']).toContain(PROBLEM);
    expect(JSON.parse(answer.body)).toMatchObject({ type: 'urn:xporta:problem:bad-request', detail: 'query parameter mode must be one of replace, merge' });
    expect(answer.headers.connection).toBe('close');
    expect(answer.closedByServer).toBe(true);
  });
});
