/**
 * One schema per route, named by the route's `operationId` in openapi.yaml. A request that does
 * not match is answered 400 before its handler runs (src/http/schemas/validation.ts), and for an
 * upload before a byte of its body is read: uploads are streamed raw, so only their path and query
 * are declared. test/http/route-schemas.test.ts fails when a route and the contract disagree.
 */
import { BOOLEAN_QUERY, INTEGER_QUERY, jsonBody, pathParams, query, type JsonSchema, type RouteSchema } from './json-schema.js';

/** `{jid}`: a bare JID, percent-encoded; longer than any legal JID is 414 (src/http/edge.ts). */
const JID: JsonSchema = { type: 'string', maxLength: 9216 };
const HOST: JsonSchema = { type: 'string' };
/** Ids of export files: 16 random bytes, base64url. */
const EXPORT_ID: JsonSchema = { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$' };
const MODE: JsonSchema = { type: 'string', enum: ['replace', 'merge'] };
const USER_SCOPE: JsonSchema = { type: 'string', enum: ['export', 'import'] };
const OPERATOR_SCOPE: JsonSchema = { type: 'string', enum: ['export', 'import', 'admin'] };
const URI: JsonSchema = { type: 'string', format: 'uri' };
const STRING: JsonSchema = { type: 'string' };
const BOOLEAN: JsonSchema = { type: 'boolean' };

/** Which data kinds a transfer covers (`include`, `exclude`: comma-separated kinds). */
const KINDS = { include: STRING, exclude: STRING };
/** The options every import takes, in its query or its JSON body. */
const IMPORT_QUERY = { ...KINDS, mode: MODE, dryRun: BOOLEAN_QUERY, createAccount: BOOLEAN_QUERY };
const IMPORT_BODY = { mode: MODE, dryRun: BOOLEAN, createAccount: BOOLEAN, ...KINDS };

const ACCOUNT = pathParams({ jid: JID });
/** An account elsewhere and its user's password, for one client-protocol session. */
const REMOTE_ACCOUNT = jsonBody({ jid: { type: 'string', minLength: 1 }, password: { type: 'string', minLength: 1 } }, { required: ['jid', 'password'] });

/** mod_http_xep227's `stores` (comma-separated Prosody store names; src/http/xep227-stores.ts). */
const STORES = { stores: STRING };
const XEP227_IMPORT_QUERY = { ...STORES, mode: MODE, dryRun: BOOLEAN_QUERY, keepSubscriptions: BOOLEAN_QUERY };

export const routeSchemas = {
  getLivez: {},
  getReadyz: {},
  getHealth: {},
  getMetrics: {},
  getOpenapi: {},

  exportUser: { params: ACCOUNT, querystring: query(KINDS) },
  importUser: { params: ACCOUNT, querystring: query({ ...IMPORT_QUERY, keepSubscriptions: BOOLEAN_QUERY }) },
  importUserFrom: {
    params: ACCOUNT,
    body: jsonBody({ url: URI, token: STRING, ...IMPORT_BODY }, { required: ['url'] }),
  },
  importUserFromXmpp: {
    params: ACCOUNT,
    body: jsonBody({ jid: STRING, password: { type: 'string', minLength: 1 }, ...IMPORT_BODY }, { required: ['jid', 'password'] }),
  },
  transferXmpp: {
    body: jsonBody({ from: REMOTE_ACCOUNT, to: REMOTE_ACCOUNT, move: BOOLEAN, ...KINDS }, { required: ['from', 'to'] }),
  },
  exportRemoteXmpp: {
    body: jsonBody({ jid: STRING, password: { type: 'string', minLength: 1 }, ...KINDS }, { required: ['jid', 'password'] }),
  },
  moveUser: {
    params: ACCOUNT,
    body: jsonBody({ newJid: { type: 'string', minLength: 1 }, importUrl: URI }, { required: ['newJid'] }),
  },
  getMove: { params: ACCOUNT },

  createExportFile: { params: ACCOUNT, querystring: query(KINDS) },
  downloadExportFile: { params: pathParams({ id: EXPORT_ID }) },
  deleteExportFile: { params: pathParams({ id: EXPORT_ID }) },

  mintUserToken: {
    params: ACCOUNT,
    body: jsonBody(
      { scopes: { type: 'array', minItems: 1, items: USER_SCOPE }, ttlSeconds: { type: 'integer', minimum: 1, maximum: 3600 } },
      { optionalBody: true },
    ),
  },
  listUserTokens: { params: ACCOUNT },
  revokeUserToken: { params: pathParams({ jid: JID, jti: STRING }) },

  createOperatorToken: {
    body: jsonBody(
      {
        name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
        scopes: { type: 'array', minItems: 1, items: OPERATOR_SCOPE },
        hosts: { type: 'array', minItems: 1, items: STRING },
      },
      { optionalBody: true },
    ),
  },
  listOperatorTokens: {},
  revokeOperatorToken: { params: pathParams({ id: STRING }) },
  rotateOperatorToken: { params: pathParams({ id: STRING }) },

  xep227Export: { querystring: query(STORES) },
  xep227Import: { querystring: query(XEP227_IMPORT_QUERY) },
  xep227ExportUser: { params: ACCOUNT, querystring: query(STORES) },
  xep227ImportUser: { params: ACCOUNT, querystring: query(XEP227_IMPORT_QUERY) },

  exportHost: { params: pathParams({ host: HOST }), querystring: query(KINDS) },
  importHost: {
    params: pathParams({ host: HOST }),
    querystring: query({ ...IMPORT_QUERY, async: BOOLEAN_QUERY, callbackUrl: URI }),
  },

  listJobs: { querystring: query({ limit: INTEGER_QUERY }) },
  getJob: { params: pathParams({ id: STRING }) },
  cancelJob: { params: pathParams({ id: STRING }) },
} as const satisfies Record<string, RouteSchema>;

export type OperationId = keyof typeof routeSchemas;
