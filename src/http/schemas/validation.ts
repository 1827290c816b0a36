/**
 * How the route schemas are applied: the validator's options, and the text of the 400 problem a
 * request that breaks its route's schema is answered with (the server's error handler renders
 * it as `urn:xporta:problem:bad-request`). The text names the parameter or field and the rule,
 * never the value sent, which may be a password or a token.
 */
import type { FastifySchemaValidationError, FastifyServerOptions } from 'fastify';

/** Which part of the request failed its schema. */
type SchemaErrorDataVar = Parameters<NonNullable<FastifyServerOptions['schemaErrorFormatter']>>[1];

/**
 * Fastify's Ajv, told to refuse what it would otherwise repair:
 * - no coercion: a JSON body's `"dryRun": "true"` or `"ttlSeconds": "60"` is a 400, not a guess
 *   (query strings are text and are declared as text, src/http/schemas/json-schema.ts);
 * - no removal: a field the schema does not have is a 400 (`additionalProperties: false`), not
 *   silently dropped;
 * - no defaults written into the request: the routes own their defaults.
 * `verbose` gives the formatter each failing schema (to list the allowed fields).
 */
export const VALIDATOR_OPTIONS = {
  customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, verbose: true },
} as const;

const PART_NAMES: Readonly<Record<SchemaErrorDataVar, string>> = {
  params: 'path parameter',
  querystring: 'query parameter',
  body: 'field',
  headers: 'header',
};

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  array: 'an array',
  object: 'an object',
  'object,null': 'an object',
};

/** Fastify's `schemaErrorFormatter`: the first error, in words. */
export function formatSchemaErrors(errors: FastifySchemaValidationError[], part: SchemaErrorDataVar): Error {
  const error = errors[0];
  return new Error(error === undefined ? `the request's ${part} is not valid` : describeError(error, part));
}

function describeError(error: FastifySchemaValidationError & { parentSchema?: unknown }, part: SchemaErrorDataVar): string {
  const where = PART_NAMES[part];
  const path = error.instancePath.slice(1).replace(/\//g, '.');
  const subject = path === '' ? (part === 'body' ? 'the body' : `the ${where}s`) : `${where} ${path}`;
  const params = error.params;
  switch (error.keyword) {
    case 'required':
      return `${path === '' ? '' : `${subject}: `}${where} ${String(params.missingProperty)} is required`;
    case 'additionalProperties': {
      const allowed = Object.keys((error.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return `unknown ${where} ${JSON.stringify(params.additionalProperty)}${path === '' ? '' : ` in ${subject}`} (allowed: ${allowed.join(', ')})`;
    }
    case 'type':
      return `${subject} must be ${TYPE_NAMES[String(params.type)] ?? String(params.type)}`;
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]) ?? [];
      if (allowed.includes('true') && allowed.includes('false')) return `${subject} must be true or false`;
      return `${subject} must be one of ${allowed.map((v) => String(v)).join(', ')}`;
    }
    case 'format':
      return `${subject} must be ${params.format === 'uri' ? 'an absolute URI' : `a valid ${String(params.format)}`}`;
    default:
      return `${subject} ${error.message ?? 'is not valid'}`;
  }
}
