/**
 * Checks responses against openapi.yaml and records which (path, method, status) triples the
 * tests exercised, so a test can assert that the contract is covered.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';
import { REPO_ROOT } from './paths.js';

interface OpenApiResponse {
  readonly content?: Record<string, { readonly schema?: unknown }>;
  readonly $ref?: string;
}
interface OpenApiOperation {
  readonly responses: Record<string, OpenApiResponse>;
}
export interface OpenApiDocument {
  readonly paths: Record<string, Record<string, OpenApiOperation>>;
  readonly components: { readonly responses?: Record<string, OpenApiResponse> };
}

export interface CheckedResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | number | undefined>;
  readonly body: string;
}

const DOC_ID = 'openapi';
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

export class ContractChecker {
  readonly document: OpenApiDocument;
  private readonly ajv: Ajv2020;
  private readonly seen = new Set<string>();

  constructor(path = join(REPO_ROOT, 'openapi.yaml')) {
    this.document = parse(readFileSync(path, 'utf8')) as OpenApiDocument;
    this.ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(this.ajv);
    this.ajv.addSchema({ ...this.document, $id: DOC_ID });
  }

  /** Validates a response of `method path` (the template, e.g. `/v1/users/{jid}/export`); throws on mismatch. */
  check(method: string, path: string, res: CheckedResponse): void {
    const operation = this.document.paths[path]?.[method.toLowerCase()];
    if (!operation) throw new Error(`openapi.yaml has no ${method} ${path}`);
    const status = String(res.statusCode);
    let response = operation.responses[status];
    if (!response) throw new Error(`openapi.yaml does not document ${status} for ${method} ${path}`);
    if (response.$ref) {
      const name = response.$ref.split('/').pop() ?? '';
      response = this.document.components.responses?.[name] ?? response;
    }
    this.seen.add(`${method.toUpperCase()} ${path} ${status}`);
    const contentType = String(res.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    const content = response.content;
    if (!content) return;
    const entry = content[contentType];
    if (!entry) throw new Error(`${method} ${path} ${status}: content type ${contentType} is not documented (${Object.keys(content).join(', ')})`);
    if (!contentType.endsWith('json')) return;
    const pointer = this.pointerTo(method, path, status, contentType, operation);
    const validate = this.ajv.getSchema(`${DOC_ID}#${pointer}`);
    if (!validate) throw new Error(`no schema at ${pointer}`);
    const body: unknown = JSON.parse(res.body);
    if (!validate(body)) {
      throw new Error(`${method} ${path} ${status} does not match openapi.yaml: ${this.ajv.errorsText(validate.errors)}\n${res.body}`);
    }
  }

  private pointerTo(method: string, path: string, status: string, contentType: string, operation: OpenApiOperation): string {
    const esc = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');
    const ref = operation.responses[status]?.$ref;
    const base = ref ? ref.slice(1) : `/paths/${esc(path)}/${method.toLowerCase()}/responses/${status}`;
    return `${base}/content/${esc(contentType)}/schema`;
  }

  /** Every documented (method, path, status) not exercised yet. */
  missing(): string[] {
    const all: string[] = [];
    for (const [path, ops] of Object.entries(this.document.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (!METHODS.includes(method)) continue;
        for (const status of Object.keys(op.responses)) all.push(`${method.toUpperCase()} ${path} ${status}`);
      }
    }
    return all.filter((k) => !this.seen.has(k));
  }
}

/** A parameter of an operation, `$ref`s resolved. */
export interface SpecParameter {
  readonly name: string;
  readonly in: 'path' | 'query' | 'header' | 'cookie';
  readonly required?: boolean;
  readonly schema?: Record<string, unknown>;
}

/** One operation of openapi.yaml, its parameters and request body `$ref`s resolved. */
export interface SpecOperation {
  readonly method: string;
  /** The template, e.g. `/v1/users/{jid}/export`. */
  readonly path: string;
  readonly operationId: string;
  readonly parameters: readonly SpecParameter[];
  readonly requestBody?: { readonly required?: boolean; readonly content: Record<string, { readonly schema?: Record<string, unknown> }> };
  readonly responses: Record<string, unknown>;
}

/** Resolves a local `$ref` (`#/components/…`) in `document`. */
export function resolveRef<T>(document: unknown, value: T | { $ref: string }): T {
  if (typeof value !== 'object' || value === null || !('$ref' in value) || typeof value.$ref !== 'string') return value as T;
  let node: unknown = document;
  for (const part of value.$ref.replace(/^#\//, '').split('/')) node = (node as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  if (node === undefined) throw new Error(`openapi.yaml: ${value.$ref} does not resolve`);
  return resolveRef<T>(document, node as T);
}

/** Every operation openapi.yaml documents. */
export function specOperations(document: OpenApiDocument = new ContractChecker().document): SpecOperation[] {
  const operations: SpecOperation[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, raw] of Object.entries(item)) {
      if (!METHODS.includes(method)) continue;
      const op = raw as OpenApiOperation & { operationId?: string; parameters?: unknown[]; requestBody?: unknown };
      operations.push({
        method: method.toUpperCase(),
        path,
        operationId: op.operationId ?? '',
        parameters: (op.parameters ?? []).map((p) => resolveRef<SpecParameter>(document, p as SpecParameter)),
        ...(op.requestBody !== undefined ? { requestBody: resolveRef<NonNullable<SpecOperation['requestBody']>>(document, op.requestBody as NonNullable<SpecOperation['requestBody']>) } : {}),
        responses: op.responses,
      });
    }
  }
  return operations;
}
