/**
 * An HTTP/1.1 GET over a plain socket that counts the body's bytes and keeps none of them: what
 * a client saving a download does, without an HTTP library's per-chunk work. The bench's client
 * runs on the same cores as the service it measures, so what it spends is taken from the service.
 * The status is checked and the body decoded as framed (chunked, Content-Length, or up to the
 * close): the count is of body bytes, not of what crossed the socket, and a body cut short fails.
 */
import { connect } from 'node:net';

export interface RawGetResult {
  readonly status: number;
  /** Body bytes received. */
  readonly bytes: number;
  /** The start of the body when the status is not 2xx, for the report. */
  readonly text?: string;
}

const CRLF_CRLF = Buffer.from('\r\n\r\n');
/** A non-2xx body is kept up to this many bytes, for the error's detail. */
const ERROR_TEXT_BYTES = 1024;

type Framing = { readonly kind: 'chunked' } | { readonly kind: 'length'; readonly length: number } | { readonly kind: 'close' };

/** Decodes a chunked body as it arrives, counting its data bytes; no copy of them is made. */
class ChunkedCounter {
  bytes = 0;
  done = false;
  /** Data bytes left in the current chunk, then its CRLF. */
  private left = 0;
  private crlfLeft = 0;
  /** The chunk-size line read so far (hex digits, extensions), or undefined inside data. */
  private line: string | undefined = '';
  /** After the last chunk: trailer lines until an empty one. */
  private trailer = false;

  feed(buf: Buffer, onData?: (data: Buffer) => void): void {
    let i = 0;
    while (i < buf.length && !this.done) {
      if (this.left > 0) {
        const n = Math.min(this.left, buf.length - i);
        if (onData) onData(buf.subarray(i, i + n));
        this.bytes += n;
        this.left -= n;
        i += n;
        if (this.left === 0) this.crlfLeft = 2;
      } else if (this.crlfLeft > 0) {
        const expected = this.crlfLeft === 2 ? 0x0d : 0x0a;
        if (buf[i] !== expected) throw new Error('chunked body: no CRLF after a chunk');
        this.crlfLeft--;
        i++;
        if (this.crlfLeft === 0) this.line = '';
      } else {
        const end = buf.indexOf(0x0a, i);
        const piece = buf.toString('latin1', i, end < 0 ? buf.length : end + 1);
        this.line = (this.line ?? '') + piece;
        i = end < 0 ? buf.length : end + 1;
        if (end < 0) continue;
        const line = this.line.replace(/\r?\n$/, '');
        this.line = undefined;
        if (this.trailer) {
          if (line === '') this.done = true;
          else this.line = '';
          continue;
        }
        const size = /^([0-9a-fA-F]+)(?:;.*)?$/.exec(line)?.[1];
        if (size === undefined) throw new Error(`chunked body: bad chunk-size line ${JSON.stringify(line.slice(0, 40))}`);
        this.left = parseInt(size, 16);
        if (this.left === 0) {
          this.trailer = true;
          this.line = '';
        }
      }
    }
  }
}

/** GETs `path` from 127.0.0.1:`port` on a connection of its own, closed after the answer. */
export function rawGet(port: number, path: string, headers: Readonly<Record<string, string>>): Promise<RawGetResult> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
    socket.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nconnection: close\r\n${lines.join('')}\r\n`);
    let head: Buffer | undefined = Buffer.alloc(0);
    let status = 0;
    let framing: Framing = { kind: 'close' };
    const chunked = new ChunkedCounter();
    let plainBytes = 0;
    const errorText: Buffer[] = [];
    let errorTextBytes = 0;
    const keepText = (data: Buffer): void => {
      if (status >= 200 && status < 300) return;
      if (errorTextBytes >= ERROR_TEXT_BYTES) return;
      errorText.push(Buffer.from(data.subarray(0, ERROR_TEXT_BYTES - errorTextBytes)));
      errorTextBytes += Math.min(data.length, ERROR_TEXT_BYTES - errorTextBytes);
    };
    const body = (data: Buffer): void => {
      if (framing.kind === 'chunked') chunked.feed(data, status >= 200 && status < 300 ? undefined : keepText);
      else {
        plainBytes += data.length;
        keepText(data);
      }
    };
    socket.on('data', (data: Buffer) => {
      try {
        if (head === undefined) return body(data);
        head = Buffer.concat([head, data]);
        const end = head.indexOf(CRLF_CRLF);
        if (end < 0) return;
        const [statusLine = '', ...fields] = head.toString('latin1', 0, end).split('\r\n');
        status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
        if (!Number.isInteger(status)) throw new Error(`not an HTTP answer: ${JSON.stringify(statusLine.slice(0, 80))}`);
        for (const field of fields) {
          const colon = field.indexOf(':');
          const name = field.slice(0, colon).trim().toLowerCase();
          const value = field.slice(colon + 1).trim().toLowerCase();
          if (name === 'transfer-encoding' && value.split(',').pop()?.trim() === 'chunked') framing = { kind: 'chunked' };
          else if (name === 'content-length' && framing.kind !== 'chunked') framing = { kind: 'length', length: Number(value) };
          else if (name === 'content-encoding' && value !== 'identity') throw new Error(`the answer is ${value}-encoded though none was asked for`);
        }
        const rest = head.subarray(end + CRLF_CRLF.length);
        head = undefined;
        if (rest.length > 0) body(rest);
      } catch (err) {
        socket.destroy(err as Error);
      }
    });
    socket.on('error', reject);
    socket.on('end', () => {
      const bytes = framing.kind === 'chunked' ? chunked.bytes : plainBytes;
      if (head !== undefined) return reject(new Error('the connection closed before the answer\'s header'));
      if (framing.kind === 'chunked' && !chunked.done) return reject(new Error(`the chunked body ended early, after ${bytes} bytes`));
      if (framing.kind === 'length' && bytes !== framing.length) return reject(new Error(`${bytes} body bytes of the ${framing.length} announced`));
      const text = errorText.length > 0 ? Buffer.concat(errorText).toString('utf8') : undefined;
      resolve({ status, bytes, ...(text !== undefined ? { text } : {}) });
    });
  });
}
