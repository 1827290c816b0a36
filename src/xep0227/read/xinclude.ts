/**
 * XInclude resolution for XEP-0227's split layouts (ejabberd writes a main file that includes one
 * file per host). Only the form XEP-0227 requires importers to support is accepted: a relative
 * `href`, no `parse` other than the default `xml`, no `xpointer`. The resolved file must lie
 * inside the base directory, symlinks included, because an uploaded document must not be able
 * to read arbitrary files of the server.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { Xep0227Error } from '../errors.js';
import type { DocumentContext, RootKind, Shared } from './shared.js';

/** XInclude nesting: the main document includes host files, which may include user files, … */
export const MAX_INCLUDE_DEPTH = 4;

/** An `<xi:include>` met by a parser: queued among its events, read by the driver in its place. */
export class IncludeRequest {
  constructor(
    readonly target: string,
    readonly roots: ReadonlySet<RootKind>,
    readonly host: string | undefined,
    readonly depth: number,
    readonly line: number,
    readonly column: number,
  ) {}
}

/** The file an include request names, resolved inside the base directory, and the context to parse it in. */
export async function includedDocument(
  request: IncludeRequest,
  shared: Shared,
  parent: DocumentContext,
): Promise<{ readonly file: string; readonly ctx: DocumentContext }> {
  const baseDir = shared.baseDir as string;
  let file: string;
  try {
    file = await resolveInclude(request.target, parent.dir ?? baseDir, baseDir);
  } catch (err) {
    if (!(err instanceof XIncludeError)) throw err;
    throw new Xep0227Error('xinclude', err.message, request.line, request.column, parent.source);
  }
  const ctx: DocumentContext = {
    roots: request.roots,
    depthOffset: request.depth - 1,
    includeDepth: parent.includeDepth + 1,
    dir: path.dirname(file),
    source: path.relative(await realpath(baseDir), file),
    host: request.host,
  };
  return { file, ctx };
}

/** Why an `<xi:include>` was refused; the reader turns it into an `xinclude` error. */
export class XIncludeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XIncludeError';
  }
}

/** Checks the include element's attributes and returns the decoded relative path. */
export function includeTarget(attrs: Readonly<Record<string, string>>): string {
  const href = attrs.href;
  if (href === undefined || href === '') throw new XIncludeError('xi:include without href');
  if (attrs.xpointer !== undefined) throw new XIncludeError('xi:include with xpointer is not supported');
  if (attrs.parse !== undefined && attrs.parse !== 'xml') {
    throw new XIncludeError(`xi:include with parse='${attrs.parse}' is not supported`);
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(href)) throw new XIncludeError(`xi:include href must be relative: ${href}`);
  if (href.startsWith('/') || href.includes('\\')) throw new XIncludeError(`xi:include href must be a relative path: ${href}`);
  if (/[?#]/.test(href)) throw new XIncludeError(`xi:include href must not have a query or fragment: ${href}`);
  let decoded: string;
  try {
    decoded = decodeURIComponent(href);
  } catch {
    throw new XIncludeError(`xi:include href is not a valid URI reference: ${href}`);
  }
  // Percent-escapes must not smuggle in what the checks above refuse.
  if (decoded.includes('\0') || decoded.includes('\\') || path.isAbsolute(decoded)) {
    throw new XIncludeError(`xi:include href must be a relative path: ${href}`);
  }
  return decoded;
}

function inside(dir: string, candidate: string): boolean {
  const rel = path.relative(dir, candidate);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * Resolves a relative include path against the including file's directory and returns the
 * file's real path, refusing anything outside `baseDir` (also through `..` or symlinks).
 */
export async function resolveInclude(relative: string, includingDir: string, baseDir: string): Promise<string> {
  const base = await realpath(baseDir);
  const lexical = path.resolve(includingDir, relative);
  if (!inside(base, lexical) && !inside(path.resolve(baseDir), lexical)) {
    throw new XIncludeError(`xi:include points outside the base directory: ${relative}`);
  }
  let real: string;
  try {
    real = await realpath(lexical);
  } catch {
    throw new XIncludeError(`xi:include target does not exist: ${relative}`);
  }
  if (!inside(base, real)) throw new XIncludeError(`xi:include points outside the base directory: ${relative}`);
  const info = await stat(real);
  if (!info.isFile()) throw new XIncludeError(`xi:include target is not a file: ${relative}`);
  return real;
}
