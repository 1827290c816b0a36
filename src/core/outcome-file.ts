/**
 * A host import's `users` list kept in a private file as the accounts end, instead of in memory:
 * each outcome is written (as JSON, OutcomeListWriter) once it is final and then dropped. The
 * answer that lists them (the import's response, a job's result) reads the file back as it sends.
 */
import { closeSync, createReadStream, openSync, rmSync, writeSync } from 'node:fs';
import type { HostAccountOutcome, HostProgress } from '../transfer/host-transfer.js';
import { OutcomeListWriter } from '../transfer/host-report.js';

/** Characters gathered before a write. */
const WRITE_CHUNK = 1 << 16;

export class OutcomeFile {
  private pending = '';
  private fd: number | undefined;
  private readonly list: OutcomeListWriter;

  /** Creates `path` (which must not exist) with `mode`. */
  constructor(
    readonly path: string,
    mode: number,
  ) {
    this.fd = openSync(path, 'wx', mode);
    this.list = new OutcomeListWriter((text) => {
      this.pending += text;
      if (this.pending.length >= WRITE_CHUNK) this.flush();
    });
  }

  add(outcome: HostAccountOutcome): void {
    this.list.add(outcome);
  }

  /** Ends the list and closes the file; the file then holds the JSON array of the outcomes added. */
  close(): void {
    if (this.fd === undefined) return;
    try {
      this.list.end();
      this.flush();
    } finally {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }

  /** Closes (when open) and removes the file. */
  remove(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
    rmSync(this.path, { force: true });
  }

  private flush(): void {
    if (this.pending.length === 0 || this.fd === undefined) return;
    const chunk = Buffer.from(this.pending, 'utf8');
    this.pending = '';
    for (let at = 0; at < chunk.length; ) at += writeSync(this.fd, chunk, at);
  }
}

/**
 * The JSON text of a host import's result, `{"host":…,"users":[…],"progress":{…}}` as
 * JSON.stringify gives it, with the users list read from `usersFile` (a closed OutcomeFile).
 */
export async function* hostResultJson(result: { readonly host: string; readonly progress: HostProgress }, usersFile: string): AsyncGenerator<string | Buffer> {
  yield `{"host":${JSON.stringify(result.host)},"users":`;
  yield* createReadStream(usersFile) as AsyncIterable<Buffer>;
  yield `,"progress":${JSON.stringify(result.progress)}}`;
}
