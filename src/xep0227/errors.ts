/**
 * The one error type of the XEP-0227 reader, shaped for the HTTP layer: a stable `code` for the
 * RFC 9457 problem type, the position in the document, and the HTTP status it maps to.
 */

export const XEP0227_ERROR_CODES = [
  'malformed',
  'doctype',
  'entity',
  'wrong-root',
  'wrong-namespace',
  'missing-attribute',
  'invalid-jid',
  'duplicate-user',
  'too-deep',
  'element-too-large',
  'too-many-nodes',
  'document-too-large',
  'invalid-value',
  'xinclude',
  'unsupported-version',
] as const;

export type Xep0227ErrorCode = (typeof XEP0227_ERROR_CODES)[number];

export class Xep0227Error extends Error {
  /**
   * @param code    what went wrong, stable across releases
   * @param detail  a human sentence without the position (the problem's `detail`)
   * @param line    1-based line of the offending construct
   * @param column  1-based column (in Unicode characters) of the offending construct
   * @param source  for XIncluded files: the file's path relative to the base directory
   */
  constructor(
    readonly code: Xep0227ErrorCode,
    readonly detail: string,
    readonly line: number,
    readonly column: number,
    readonly source?: string,
  ) {
    super(`${detail} (${source === undefined ? '' : `${source}, `}line ${line}, column ${column})`);
    this.name = 'Xep0227Error';
  }

  /**
   * Syntax problems are the client's bad request, size limits are 413 so that clients can tell
   * "too big" from "broken", and a document that parses but breaks the format's rules is 422.
   */
  get status(): 400 | 413 | 422 {
    switch (this.code) {
      case 'malformed':
      case 'doctype':
      case 'entity':
        return 400;
      case 'document-too-large':
      case 'element-too-large':
      case 'too-many-nodes':
        return 413;
      default:
        return 422;
    }
  }
}

export function isXep0227Error(err: unknown): err is Xep0227Error {
  return err instanceof Xep0227Error;
}
