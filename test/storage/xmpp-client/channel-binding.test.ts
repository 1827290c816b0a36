/**
 * SCRAM channel binding (RFC 5802 §6, RFC 5929, RFC 9266): the gs2 header and `c=` attribute,
 * the mechanism and binding type chosen for what a server offers, a -PLUS exchange checked by
 * an independent server-side computation, and the binding data of a real loopback TLS
 * connection compared with what the server end of the same connection computes.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { channelBindingData, computableBindings, serverEndPoint, signatureAlgorithmOid } from '../../../src/storage/xmpp-client/channel-binding.js';
import { channelBindingAttribute, chooseSasl, gs2Header, startSasl } from '../../../src/storage/xmpp-client/scram.js';
import { makeTestCertificates } from '../../support/test-ca.js';

const dir = mkdtempSync(join(tmpdir(), 'xporta-cb-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('gs2 header and the c= attribute', () => {
  it('gives RFC 5802 §5\'s biws for n, eSws for y, and header plus data for p', () => {
    expect(gs2Header({ flag: 'n' })).toBe('n,,');
    expect(channelBindingAttribute({ flag: 'n' })).toBe('biws');
    expect(channelBindingAttribute({ flag: 'y' })).toBe('eSws');
    const data = Buffer.from('0123456789abcdef0123456789abcdef');
    expect(gs2Header({ flag: 'p', type: 'tls-exporter' })).toBe('p=tls-exporter,,');
    expect(Buffer.from(channelBindingAttribute({ flag: 'p', type: 'tls-exporter' }, data), 'base64').toString()).toBe('p=tls-exporter,,0123456789abcdef0123456789abcdef');
    expect(() => channelBindingAttribute({ flag: 'p', type: 'tls-unique' })).toThrow(/no tls-unique/);
  });

  it('refuses a gs2 flag that does not fit the mechanism', () => {
    expect(() => startSasl('SCRAM-SHA-256-PLUS', 'user', 'pencil')).toThrow(/does not fit/);
    expect(() => startSasl('SCRAM-SHA-1', 'user', 'pencil', { binding: { flag: 'p', type: 'tls-unique' }, bindingData: Buffer.from('x') })).toThrow(/does not fit/);
  });
});

describe('SCRAM-SHA-256-PLUS exchange', () => {
  /** The server's side of RFC 5802 §3, written out independently of the client code. */
  function serverCheck(clientFirst: string, serverFirst: string, clientFinal: string, password: string, salt: Buffer, iterations: number): { proofOk: boolean; serverSignature: string } {
    const h = (d: Buffer | string): Buffer => createHash('sha256').update(d).digest();
    const hmac = (k: Buffer, d: string): Buffer => createHmac('sha256', k).update(d).digest();
    const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
    const clientKey = hmac(salted, 'Client Key');
    const bare = clientFirst.slice(clientFirst.indexOf(',', clientFirst.indexOf(',') + 1) + 1);
    const withoutProof = clientFinal.slice(0, clientFinal.lastIndexOf(',p='));
    const authMessage = `${bare},${serverFirst},${withoutProof}`;
    const signature = hmac(h(clientKey), authMessage);
    const proof = Buffer.from(clientFinal.slice(clientFinal.lastIndexOf(',p=') + 3), 'base64');
    const recovered = Buffer.from(proof.map((b, i) => b ^ (signature[i] ?? 0)));
    return { proofOk: h(recovered).equals(h(clientKey)), serverSignature: hmac(hmac(salted, 'Server Key'), authMessage).toString('base64') };
  }

  it('binds the data into c= and the proof, which a server with the same data accepts', () => {
    const data = Buffer.alloc(32, 7);
    const sasl = startSasl('SCRAM-SHA-256-PLUS', 'user', 'pencil', { binding: { flag: 'p', type: 'tls-exporter' }, bindingData: data, clientNonce: 'rOprNGfwEbeRWgbNEkqO' });
    const clientFirst = sasl.initial().toString();
    expect(clientFirst).toBe('p=tls-exporter,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    const serverFirst = `r=rOprNGfwEbeRWgbNEkqOserver,s=${salt.toString('base64')},i=4096`;
    const clientFinal = sasl.challenge(Buffer.from(serverFirst)).toString();
    const c = /^c=([^,]+),/.exec(clientFinal)?.[1] ?? '';
    expect(Buffer.from(c, 'base64')).toEqual(Buffer.concat([Buffer.from('p=tls-exporter,,'), data]));
    const check = serverCheck(clientFirst, serverFirst, clientFinal, 'pencil', salt, 4096);
    expect(check.proofOk).toBe(true);
    expect(() => sasl.success(Buffer.from(`v=${check.serverSignature}`))).not.toThrow();
    // A man in the middle terminates TLS twice: the server's binding data differs from the client's.
    const otherSide = startSasl('SCRAM-SHA-256-PLUS', 'user', 'pencil', { binding: { flag: 'p', type: 'tls-exporter' }, bindingData: Buffer.alloc(32, 8), clientNonce: 'rOprNGfwEbeRWgbNEkqO' });
    otherSide.initial();
    expect(otherSide.challenge(Buffer.from(serverFirst)).toString()).not.toBe(clientFinal);
  });
});

describe('choosing the mechanism and the binding', () => {
  const tls13 = { computable: ['tls-exporter', 'tls-server-end-point'] as const, protocol: 'TLSv1.3' };
  const tls12 = { computable: ['tls-unique', 'tls-server-end-point'] as const, protocol: 'TLSv1.2' };
  const all = ['SCRAM-SHA-1', 'SCRAM-SHA-256', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS', 'PLAIN'];

  it('prefers -PLUS with the first advertised type of ours (XEP-0440)', () => {
    expect(chooseSasl(all, true, { ...tls13, advertised: ['tls-server-end-point', 'tls-exporter', 'tls-unique'] })).toEqual({ mechanism: 'SCRAM-SHA-256-PLUS', binding: { flag: 'p', type: 'tls-exporter' } });
    expect(chooseSasl(all, true, { ...tls13, advertised: ['tls-server-end-point'] })).toEqual({ mechanism: 'SCRAM-SHA-256-PLUS', binding: { flag: 'p', type: 'tls-server-end-point' } });
    expect(chooseSasl(['SCRAM-SHA-1', 'SCRAM-SHA-1-PLUS'], true, { ...tls12, advertised: ['tls-unique'] })).toEqual({ mechanism: 'SCRAM-SHA-1-PLUS', binding: { flag: 'p', type: 'tls-unique' } });
  });

  it('uses tls-unique below TLS 1.3 when the server lists no types, and no binding on TLS 1.3 then', () => {
    expect(chooseSasl(all, true, tls12)).toEqual({ mechanism: 'SCRAM-SHA-256-PLUS', binding: { flag: 'p', type: 'tls-unique' } });
    expect(chooseSasl(all, true, tls13)).toEqual({ mechanism: 'SCRAM-SHA-256', binding: { flag: 'n' } });
  });

  it('says n when -PLUS is offered but no listed type is ours, y when no -PLUS is offered', () => {
    expect(chooseSasl(all, true, { ...tls13, advertised: ['tls-unique'] })).toEqual({ mechanism: 'SCRAM-SHA-256', binding: { flag: 'n' } });
    expect(chooseSasl(['SCRAM-SHA-1', 'PLAIN'], true, tls13)).toEqual({ mechanism: 'SCRAM-SHA-1', binding: { flag: 'y' } });
    expect(chooseSasl(['SCRAM-SHA-1'], true, { computable: [], protocol: 'TLSv1.3' })).toEqual({ mechanism: 'SCRAM-SHA-1', binding: { flag: 'n' } });
  });

  it('never binds, nor says y, over plaintext', () => {
    expect(chooseSasl(all, false, { ...tls13, advertised: ['tls-exporter'] })).toEqual({ mechanism: 'SCRAM-SHA-256', binding: { flag: 'n' } });
    expect(chooseSasl(['SCRAM-SHA-1-PLUS'], false, tls12)).toBeUndefined();
  });
});

describe('tls-server-end-point (RFC 5929 §4.1)', () => {
  const makeCert = (name: string, args: string[]): Buffer => {
    const pem = join(dir, `${name}.crt`);
    execFileSync('openssl', ['req', '-x509', ...args, '-nodes', '-keyout', join(dir, `${name}.key`), '-out', pem, '-days', '1', '-subj', `/CN=${name}`], { stdio: 'pipe' });
    return new X509Certificate(readFileSync(pem)).raw;
  };

  it('hashes with the signature\'s hash, SHA-256 for SHA-1 and MD5', () => {
    const ecdsa256 = makeCert('ec256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-sha256']);
    const rsa384 = makeCert('rsa384', ['-newkey', 'rsa:2048', '-sha384']);
    const rsa1 = makeCert('rsa1', ['-newkey', 'rsa:2048', '-sha1']);
    const rsa512 = makeCert('rsa512', ['-newkey', 'rsa:2048', '-sha512']);
    expect(signatureAlgorithmOid(ecdsa256)).toBe('1.2.840.10045.4.3.2');
    expect(signatureAlgorithmOid(rsa384)).toBe('1.2.840.113549.1.1.12');
    expect(signatureAlgorithmOid(rsa1)).toBe('1.2.840.113549.1.1.5');
    expect(serverEndPoint(ecdsa256)).toEqual(createHash('sha256').update(ecdsa256).digest());
    expect(serverEndPoint(rsa384)).toEqual(createHash('sha384').update(rsa384).digest());
    expect(serverEndPoint(rsa512)).toEqual(createHash('sha512').update(rsa512).digest());
    expect(serverEndPoint(rsa1)).toEqual(createHash('sha256').update(rsa1).digest());
    expect(signatureAlgorithmOid(Buffer.from([0x30, 0x03, 0x02, 0x01]))).toBeUndefined();
  });
});

describe('binding data of a real TLS connection', () => {
  const certs = makeTestCertificates(dir);

  /** One loopback TLS connection at `version`; both ends' sockets, open. */
  async function pair(version: 'TLSv1.2' | 'TLSv1.3'): Promise<{ client: TLSSocket; server: TLSSocket; close: () => void }> {
    let serverSide: TLSSocket | undefined;
    const server = createServer({ cert: readFileSync(certs.cert), key: readFileSync(certs.key), minVersion: version, maxVersion: version }, (s) => {
      serverSide = s;
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const client = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: [readFileSync(certs.ca)] });
    await new Promise<void>((resolve, reject) => {
      client.once('secureConnect', resolve);
      client.once('error', reject);
    });
    for (let i = 0; i < 100 && !serverSide; i++) await new Promise((r) => setTimeout(r, 10));
    return {
      client,
      server: serverSide as TLSSocket,
      close: () => {
        client.destroy();
        server.close();
      },
    };
  }

  it('TLS 1.3: tls-exporter equals the server end\'s keying material; tls-unique is undefined', async () => {
    const { client, server, close } = await pair('TLSv1.3');
    try {
      expect(computableBindings(client)).toEqual(['tls-exporter', 'tls-server-end-point']);
      const exporter = channelBindingData(client, 'tls-exporter');
      expect(exporter?.length).toBe(32);
      expect(exporter).toEqual(server.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)));
      expect(channelBindingData(client, 'tls-unique')).toBeUndefined();
      expect(channelBindingData(client, 'tls-server-end-point')).toEqual(createHash('sha256').update(new X509Certificate(readFileSync(certs.cert)).raw).digest());
    } finally {
      close();
    }
  });

  it('TLS 1.2: tls-unique is the client\'s Finished, the one the server reads as its peer\'s', async () => {
    const { client, server, close } = await pair('TLSv1.2');
    try {
      expect(computableBindings(client)).toEqual(['tls-unique', 'tls-server-end-point']);
      const unique = channelBindingData(client, 'tls-unique');
      expect(unique?.length).toBe(12);
      expect(unique).toEqual(server.getPeerFinished());
      expect(channelBindingData(client, 'tls-exporter')).toBeUndefined();
    } finally {
      close();
    }
  });
});
