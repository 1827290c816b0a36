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
interface OpenApiDocument {
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
