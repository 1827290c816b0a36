/**
 * A byte-level TCP relay for "connection dropped mid-transfer" tests: it forwards to a local
 * port, counts the bytes the server sends, and cuts both sides once they pass `cutAfter`
 * (Infinity measures a whole exchange first, so a cut can then be placed inside it).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface CuttingProxy {
  readonly server: Server;
  readonly port: number;
  /** True once the relay has cut a connection. */
  cut(): boolean;
  /** Bytes the server has sent through the relay so far. */
  bytes(): number;
}

/** A relay on a free loopback port to `port` on 127.0.0.1. */
export function cuttingProxy(port: number, cutAfter: number): Promise<CuttingProxy> {
  let didCut = false;
  let sent = 0;
  const server = createServer((client: Socket) => {
    const upstream = connect(port, '127.0.0.1');
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d: Buffer) => {
      sent += d.length;
      if (sent > cutAfter) {
        didCut = true;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(d);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : 0, cut: () => didCut, bytes: () => sent });
    });
  });
}
