/**
 * What the parsers of one document share: the reader's options and limits, the state common to
 * the main document and the files it includes, and the items a parser queues for its driver.
 */
import type { DocumentEvent } from '../../records/model.js';
import type { IncludeRequest } from './xinclude.js';

export interface ReaderOptions {
  /** Deepest element nesting accepted, counting `<server-data>` as 1. Default 64. */
  readonly maxDepth?: number;
  /**
   * Largest single record subtree (a vCard with its photo, one archived message, one PEP item),
   * in bytes of the document; also bounds any run of bytes the parser buffers between two
   * events. Default 16 MiB.
   */
  readonly maxElementBytes?: number;
  /**
   * Most elements in a single record subtree, the record's own element included. Bounds the
   * memory a record's tree takes whatever its byte size: empty elements cost a few bytes of
   * document each but far more as objects. Default 50,000.
   */
  readonly maxElementNodes?: number;
  /** Largest document in bytes, XIncluded files included. Default unlimited. */
  readonly maxDocumentBytes?: number;
  /** Directory that XIncluded files must lie in; relative hrefs of the main document resolve against it. */
  readonly baseDir?: string;
  /** Follow `<xi:include>` children of `<server-data>` and `<host>`; needs `baseDir`. Default false. */
  readonly allowXInclude?: boolean;
  /**
   * Root elements the main document may have: `<server-data>` (the default) and, for host
   * imports, a `<host>` root as ejabberd's `export_piefxis_host` writes it.
   */
  readonly roots?: readonly ('server-data' | 'host')[];
  /**
   * Read credentials (`password`, `<scram-credentials>`). Default true; false when they are not
   * imported, so that credentials the reader would refuse cannot fail the document.
   */
  readonly credentials?: boolean;
  /**
   * Take archive items of the usual shape straight from the text (archive-item.ts) instead of
   * through the parser. Default true; false only to compare the two in tests.
   */
  readonly fastArchive?: boolean;
}

const DEFAULT_MAX_DEPTH = 64;
const DEFAULT_MAX_ELEMENT_BYTES = 16 * 1024 * 1024;
const DEFAULT_MAX_ELEMENT_NODES = 50_000;
/** Largest piece of the input handed to saxes at once; also the read size of included files. */
export const SLICE = 64 * 1024;

export type RootKind = 'server-data' | 'host' | 'user';

/** What a parser produces: document events, and requests to read an included file in their place. */
export type QueueItem = DocumentEvent | IncludeRequest;

/** State shared by the main document and the files it includes. */
export class Shared {
  readonly maxDepth: number;
  readonly maxElementBytes: number;
  readonly maxElementNodes: number;
  readonly maxDocumentBytes: number;
  readonly baseDir: string | undefined;
  readonly allowXInclude: boolean;
  readonly fastArchive: boolean;
  readonly credentials: boolean;
  documentBytes = 0;
  /** User names per host, for duplicate detection across host elements and included files. */
  readonly users = new Map<string, Set<string>>();

  constructor(options: ReaderOptions) {
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.maxElementBytes = options.maxElementBytes ?? DEFAULT_MAX_ELEMENT_BYTES;
    this.maxElementNodes = options.maxElementNodes ?? DEFAULT_MAX_ELEMENT_NODES;
    this.maxDocumentBytes = options.maxDocumentBytes ?? Number.POSITIVE_INFINITY;
    this.baseDir = options.baseDir;
    this.allowXInclude = options.allowXInclude === true && options.baseDir !== undefined;
    this.fastArchive = options.fastArchive ?? true;
    this.credentials = options.credentials ?? true;
  }
}

export interface DocumentContext {
  readonly roots: ReadonlySet<RootKind>;
  /** Depth of the element the document's root stands in for, minus one. */
  readonly depthOffset: number;
  readonly includeDepth: number;
  /** Directory relative hrefs resolve against. */
  readonly dir: string | undefined;
  /** Name of the file in errors (XIncluded files only). */
  readonly source: string | undefined;
  /** Host the included `<user>` belongs to. */
  readonly host: string | undefined;
}

