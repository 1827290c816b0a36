/**
 * The JSON Schema subset the route schemas are written in, and the shared pieces they are built
 * from. Every keyword here has the meaning it has in openapi.yaml; test/http/route-schemas.test.ts
 * holds the two in step.
 *
 * Query strings are text and the validator does not coerce (src/http/schemas/validation.ts), so a
 * query parameter the contract types as boolean or integer is declared here as the strings that
 * spell it ({@link BOOLEAN_QUERY}, {@link INTEGER_QUERY}); the route reads the value as it does today.
 */
import type { FastifySchema } from 'fastify';

export interface JsonSchema {
  readonly type?: 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'object' | readonly ('object' | 'null')[];
  readonly enum?: readonly (string | number | boolean)[];
  readonly format?: 'uri';
  readonly pattern?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minItems?: number;
  readonly items?: JsonSchema;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean;
}

/** An object schema: path parameters, a query string or a JSON body. */
export interface ObjectSchema extends JsonSchema {
  readonly type: 'object' | readonly ('object' | 'null')[];
  readonly properties: Readonly<Record<string, JsonSchema>>;
}

/** What a route declares; uploads (streamed raw) declare no body. */
export interface RouteSchema extends FastifySchema {
  readonly params?: ObjectSchema;
  readonly querystring?: ObjectSchema;
  readonly body?: ObjectSchema;
}

/** The spellings of a boolean query parameter the routes accept; an empty value (`?dryRun`) is true. */
export const BOOLEAN_QUERY: JsonSchema = { type: 'string', enum: ['true', 'false', '1', '0', ''] };

/** A non-negative integer in a query string; its range is the route's to check. */
export const INTEGER_QUERY: JsonSchema = { type: 'string', pattern: '^[0-9]{1,10}$' };

/** Path parameters, all required (a route without them does not match). */
export function pathParams(properties: Readonly<Record<string, JsonSchema>>): ObjectSchema {
  return { type: 'object', properties, required: Object.keys(properties) };
}

/** Query parameters, all optional; others (such as `token`) are left alone. */
export function query(properties: Readonly<Record<string, JsonSchema>>): ObjectSchema {
  return { type: 'object', properties };
}

/**
 * A JSON object body with exactly these fields. An optional body may also be absent: Fastify
 * validates a missing body as `null`.
 */
export function jsonBody(properties: Readonly<Record<string, JsonSchema>>, options: { readonly required?: readonly string[]; readonly optionalBody?: boolean } = {}): ObjectSchema {
  return {
    type: options.optionalBody === true ? ['object', 'null'] : 'object',
    properties,
    ...(options.required !== undefined ? { required: options.required } : {}),
    additionalProperties: false,
  };
}
