/**
 * Endpoints compatible with Prosody's mod_http_xep227 (prosody-modules), so that tools written
 * against it (Snikket's web portal, for one) can point at xporta:
 *
 * - `GET /xep227/export?stores=…` and `PUT /xep227/import?stores=…`, as the module serves them
 *   under its default path: the account is the one the bearer token belongs to (an xporta user
 *   token, where Prosody takes a mod_tokenauth token).
 * - `GET /xep227/users/{jid}/export` and `PUT /xep227/users/{jid}/import`: the same for any token
 *   that may act on `{jid}`, operator tokens included; a tool that takes the module's base URL
 *   is given `…/xep227/users/{jid}`.
 *
 * `stores=` takes Prosody's store names (src/http/xep227-stores.ts). An import merges by default:
 * the module appends to the archive and publishes PEP items over the existing ones, and a merge
 * never drops what the document does not hold; `mode=replace` clears the selected kinds first.
 * Everything else is the native routes' behaviour (src/http/account-io.ts): streamed, all or
 * nothing, problem+json errors.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../../core/auth/authenticator.js';
import type { ServiceContext } from '../../core/context.js';
import { importMode } from '../../core/import-options.js';
import type { UserRef } from '../../storage/backend.js';
import { importUploadInto, sendAccountExport } from '../account-io.js';
import { auditNote } from '../audit-trail.js';
import { guardAccount, guardTokenAccount } from '../guard.js';
import { booleanParam } from '../params.js';
import { routeSchemas } from '../schemas/routes.js';
import { kindsOfStores } from '../xep227-stores.js';

interface StoresQuery {
  stores?: string;
}

interface ImportQuery extends StoresQuery {
  mode?: string;
  dryRun?: string;
  keepSubscriptions?: string;
}

type Account = { readonly principal: Principal; readonly jid: string; readonly ref: UserRef };

const XEP227_EXPORT_FOR_OPERATORS = '/xep227/users/{jid}/export';
const XEP227_IMPORT_FOR_OPERATORS = '/xep227/users/{jid}/import';

export const xep227CompatRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  const exportHandler = (account: (request: FastifyRequest) => Account) =>
    async (request: FastifyRequest<{ Querystring: StoresQuery }>, reply: FastifyReply) => {
      const owner = account(request);
      const kinds = kindsOfStores(request.query.stores);
      auditNote(request, { account: owner.jid, kinds: [...kinds] });
      return sendAccountExport(ctx, request, reply, owner, kinds);
    };

  const importHandler = (account: (request: FastifyRequest) => Account) =>
    async (request: FastifyRequest<{ Querystring: ImportQuery }>, reply: FastifyReply) => {
      const owner = account(request);
      const kinds = kindsOfStores(request.query.stores);
      const mode = importMode(request.query.mode, 'merge');
      const dryRun = booleanParam('dryRun', request.query.dryRun);
      const keepSubscriptions = booleanParam('keepSubscriptions', request.query.keepSubscriptions);
      auditNote(request, { account: owner.jid, kinds: [...kinds], mode, dryRun });
      const report = await importUploadInto(ctx, request, owner, { mode, dryRun, include: kinds, createAccount: false, keepSubscriptions });
      return reply.code(200).send(report);
    };

  app.get<{ Querystring: StoresQuery }>(
    '/xep227/export',
    { schema: routeSchemas.xep227Export, config: { guard: { tokenAccount: 'export', operatorPath: XEP227_EXPORT_FOR_OPERATORS } } },
    exportHandler((request) => guardTokenAccount(ctx, request, 'export', XEP227_EXPORT_FOR_OPERATORS)),
  );

  app.put<{ Querystring: ImportQuery }>(
    '/xep227/import',
    { schema: routeSchemas.xep227Import, config: { guard: { tokenAccount: 'import', operatorPath: XEP227_IMPORT_FOR_OPERATORS }, upload: true } },
    importHandler((request) => guardTokenAccount(ctx, request, 'import', XEP227_IMPORT_FOR_OPERATORS)),
  );

  app.get<{ Params: { jid: string }; Querystring: StoresQuery }>(
    '/xep227/users/:jid/export',
    { schema: routeSchemas.xep227ExportUser, config: { guard: { account: 'export' } } },
    exportHandler((request) => guardAccount(ctx, request, (request.params as { jid: string }).jid, 'export')),
  );

  app.put<{ Params: { jid: string }; Querystring: ImportQuery }>(
    '/xep227/users/:jid/import',
    { schema: routeSchemas.xep227ImportUser, config: { guard: { account: 'import' }, upload: true } },
    importHandler((request) => guardAccount(ctx, request, (request.params as { jid: string }).jid, 'import')),
  );
};
