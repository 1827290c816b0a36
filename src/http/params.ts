/**
 * Query and body parameters shared by the transfer routes. Their errors are the layers' own
 * (src/http/problem-map.ts answers them 400) or 400 problems.
 */
import type { DataKind } from '../records/model.js';
import { selectKinds } from '../transfer/account-transfer.js';
import { problems } from './problem.js';

/** `include` and `exclude` (comma-separated data kinds) → the selected kinds; non-strings are ignored. */
export function kindsParam(query: { readonly include?: unknown; readonly exclude?: unknown }): Set<DataKind> {
  return selectKinds(typeof query.include === 'string' ? query.include : undefined, typeof query.exclude === 'string' ? query.exclude : undefined);
}

export function booleanParam(name: string, value: string | undefined): boolean {
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1' || value === '') return true;
  throw problems.badRequest(`${name} must be true or false`);
}

/** An absolute http(s) URL, or a 400 naming the field. */
export function httpUrlParam(name: string, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw problems.badRequest(`${name} must be an absolute http(s) URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw problems.badRequest(`${name} must be an absolute http(s) URL`);
  return url;
}
