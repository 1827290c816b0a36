/**
 * HTTP/1.1 clients on raw sockets, for what fetch and undici will not do: a body far larger than
 * anyone should read, headers or bodies that trickle, and a count of what was really sent.
 */
import { connect, type Socket } from 'node:net';

export interface RawAnswer {
  /** 0 when the server closed without answering. */
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** Bytes the socket had written (headers included) when the first answer byte arrived, or at close. */
  readonly bytesSentBeforeAnswer: number;
  /** Milliseconds from connect to close. */
  readonly elapsedMs: number;
  /** The server closed the connection (rather than the client's own deadline). */
  readonly closedByServer: boolean;
}

function parseAnswer(text: string): Pick<RawAnswer, 'status' | 'headers' | 'body'> {
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0), headers, body: end < 0 ? '' : text.slice(end + 4) };
}

interface Exchange {
  readonly socket: Socket;
  readonly answer: Promise<RawAnswer>;
  /** True once the first answer byte arrived. */
  answered(): boolean;
}

/** Opens a connection; the answer settles when the server closes it, or after `deadlineMs` (the client then hangs up). */
function exchange(port: number, deadlineMs: number): Exchange {
  const socket = connect(port, '127.0.0.1');
  const started = Date.now();
  const received: Buffer[] = [];
  let sentBeforeAnswer: number | undefined;
  let closedByServer = false;
  const answer = new Promise<RawAnswer>((resolve) => {
    const timer = setTimeout(() => socket.destroy(), deadlineMs);
    socket.on('data', (chunk: Buffer) => {
      sentBeforeAnswer ??= socket.bytesWritten;
      received.push(chunk);
    });
    socket.on('end', () => (closedByServer = true));
    // EPIPE / ECONNRESET once the server stops reading are expected.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') closedByServer = true;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({
        ...parseAnswer(Buffer.concat(received).toString('utf8')),
        bytesSentBeforeAnswer: sentBeforeAnswer ?? socket.bytesWritten,
        elapsedMs: Date.now() - started,
        closedByServer,
      });
    });
  });
  return { socket, answer, answered: () => sentBeforeAnswer !== undefined };
}

/**
 * Sends `head` (a request line and headers, with their final blank line) and then `bodyBytes`
 * of filler as fast as the socket takes them, stopping at the first answer byte.
 */
export function floodRequest(port: number, head: string, bodyBytes: number, deadlineMs = 20_000): Promise<RawAnswer> {
  const ex = exchange(port, deadlineMs);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let sent = 0;
  const pump = (): void => {
    while (!ex.answered() && sent < bodyBytes && !ex.socket.destroyed) {
      const n = Math.min(chunk.length, bodyBytes - sent);
      sent += n;
      if (!ex.socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        ex.socket.once('drain', pump);
        return;
      }
    }
  };
  ex.socket.on('connect', () => {
    ex.socket.write(head);
    pump();
  });
  return ex.answer;
}

/**
 * Sends `head`, then `first`, then one byte of `rest` every `everyMs` until the server answers or
 * closes, or `rest` runs out (then the client goes quiet and waits).
 */
export function trickleRequest(port: number, head: string, first: string, rest: string, everyMs: number, deadlineMs = 20_000): Promise<RawAnswer> {
  const ex = exchange(port, deadlineMs);
  let next = 0;
  let timer: NodeJS.Timeout | undefined;
  ex.socket.on('connect', () => {
    ex.socket.write(head + first);
    timer = setInterval(() => {
      if (ex.answered() || ex.socket.destroyed || next >= rest.length) {
        clearInterval(timer);
        return;
      }
      ex.socket.write(rest[next++]!);
    }, everyMs);
  });
  ex.socket.on('close', () => clearInterval(timer));
  return ex.answer;
}
