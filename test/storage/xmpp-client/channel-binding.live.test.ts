/**
 * SCRAM -PLUS logins against real servers, over TLS with a CA this test makes: which mechanism
 * and binding each server leads the client to, that the login succeeds with it, and that a man
 * in the middle — a TLS-terminating relay with a certificate the client trusts — makes the
 * bound login fail where the same login straight to the server succeeds.
 *
 * What the servers offer (their sources: Prosody util/sasl/scram.lua and mod_saslauth.lua,
 * ejabberd's xmpp library xmpp_stream_in / xmpp_sasl_scram):
 * - Prosody 0.12: -PLUS with tls-unique only, and only below TLS 1.3; no XEP-0440 list.
 * - Prosody 13: -PLUS with tls-exporter on TLS 1.3 (tls-unique below), listed per XEP-0440;
 *   tls-server-end-point only with `tls_server_end_point_hash` configured.
 * - ejabberd 23.01: -PLUS on every TLS stream, checking tls-unique (the peer's Finished, also on
 *   TLS 1.3); no XEP-0440 list.
 * - ejabberd 24.12: -PLUS with tls-unique, tls-exporter and tls-server-end-point, listed per XEP-0440.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AddressPolicy } from '../../../src/lib/net/address-policy.js';
import { XmppPullError } from '../../../src/storage/xmpp-client/errors.js';
import { ClientStream, type ClientStreamOptions, type ServiceAddress } from '../../../src/storage/xmpp-client/stream.js';
import { describeWithEjabberd, startEjabberd, type EjabberdHandle } from '../../support/ejabberd.js';
import { freePorts } from '../../support/ports.js';
import { createUser, describeWithProsody, startProsody, type ProsodyHandle } from '../../support/prosody.js';
import { installProsodyCertificate, makeTestCertificates, type TestCertificates } from '../../support/test-ca.js';

const PASSWORD = 'channel-binding-test-password';

/**
 * A man in the middle: terminates the client's TLS with its own certificate (signed by a CA the
 * client trusts) and opens its own TLS to the server, relaying the plaintext between the two.
 * `maxVersion` holds the client's side to that TLS version; the server's side is the server's choice.
 */
function tlsRelay(certs: TestCertificates, upstreamPort: number, upstreamCa: string, maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<{ server: Server; port: number }> {
  const server = createServer({ cert: readFileSync(certs.cert), key: readFileSync(certs.key), maxVersion }, (client: TLSSocket) => {
    const upstream = connect({ host: '127.0.0.1', port: upstreamPort, servername: 'localhost', ca: [readFileSync(upstreamCa)] });
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port })));
}

function options(service: ServiceAddress, ca: readonly string[]): ClientStreamOptions {
  return {
    jid: 'alice@localhost',
    password: PASSWORD,
    policy: new AddressPolicy(['127.0.0.0/8']),
    ca: ca.map((file) => readFileSync(file, 'utf8')),
    services: [service],
    timeoutMs: 10_000,
  };
}

async function login(service: ServiceAddress, ca: readonly string[]): Promise<{ mechanism?: string; binding?: string; protocol: string }> {
  const stream = await ClientStream.open(options(service, ca));
  try {
    const auth = stream.authentication;
    return { ...(auth ? { mechanism: auth.mechanism, binding: auth.binding.flag === 'p' ? `p=${auth.binding.type}` : auth.binding.flag } : {}), protocol: stream.isEncrypted ? 'tls' : 'plain' };
  } finally {
    await stream.close();
  }
}

async function loginFailure(service: ServiceAddress, ca: readonly string[]): Promise<XmppPullError> {
  try {
    const stream = await ClientStream.open(options(service, ca));
    await stream.close();
  } catch (err) {
    if (err instanceof XmppPullError) return err;
    throw err;
  }
  throw new Error('the login succeeded');
}

/** A Prosody with the test certificate for localhost, STARTTLS on c2s and direct TLS on a port of its own. */
async function prosodyWithTls(version: '0.12' | '13', dir: string, certs: TestCertificates, extra = ''): Promise<{ server: ProsodyHandle; directTlsPort: number }> {
  installProsodyCertificate(certs, dir);
  const [directTlsPort = 0] = await freePorts(1);
  const server = await startProsody({ version, storage: 'sqlite', dir, extraModules: ['tls'], extraGlobalConfig: `c2s_direct_tls_ports = { ${directTlsPort} }\n${extra}` });
  await createUser(server, 'alice', 'localhost', PASSWORD);
  return { server, directTlsPort };
}

function prosodySuite(version: '0.12' | '13'): void {
  describeWithProsody(
    `SCRAM channel binding against Prosody ${version}`,
    () => {
      // Made in beforeAll: a run that filters these tests out creates nothing.
      let dir = '';
      let certs: TestCertificates;
      let mitmCerts: TestCertificates;
      let tls12: { server: ProsodyHandle; directTlsPort: number };
      let tls13: { server: ProsodyHandle; directTlsPort: number };
      let relays: Server[] = [];

      beforeAll(async () => {
        dir = mkdtempSync(join(tmpdir(), `xporta-cb-prosody${version}-`));
        certs = makeTestCertificates(dir);
        mkdirSync(join(dir, 'mitm'));
        mitmCerts = makeTestCertificates(join(dir, 'mitm'));
        // One server held to TLS 1.2 (where tls-unique is defined), one with the default (TLS 1.3).
        [tls12, tls13] = await Promise.all([
          prosodyWithTls(version, join(dir, 'tls12'), certs, 'ssl = { protocol = "tlsv1_2" }'),
          prosodyWithTls(version, join(dir, 'tls13'), certs),
        ]);
      }, 120_000);

      afterAll(async () => {
        for (const relay of relays) relay.close();
        relays = [];
        await Promise.allSettled([tls12?.server.stop(), tls13?.server.stop()]);
        if (dir) rmSync(dir, { recursive: true, force: true });
      });

      it('TLS 1.2: logs in with SCRAM-SHA-1-PLUS bound with tls-unique, over STARTTLS and direct TLS', async () => {
        const expected = { mechanism: 'SCRAM-SHA-1-PLUS', binding: 'p=tls-unique', protocol: 'tls' };
        expect(await login({ host: '127.0.0.1', port: tls12.server.c2sPort, directTls: false }, [certs.ca])).toEqual(expected);
        expect(await login({ host: '127.0.0.1', port: tls12.directTlsPort, directTls: true }, [certs.ca])).toEqual(expected);
      });

      it('TLS 1.3: what the server offers there', async () => {
        const got = await login({ host: '127.0.0.1', port: tls13.server.c2sPort, directTls: false }, [certs.ca]);
        // 0.12 offers no -PLUS on TLS 1.3: the client says it could bind (y), which 0.12 accepts.
        expect(got).toEqual(version === '13' ? { mechanism: 'SCRAM-SHA-1-PLUS', binding: 'p=tls-exporter', protocol: 'tls' } : { mechanism: 'SCRAM-SHA-1', binding: 'y', protocol: 'tls' });
      });

      it('a TLS-terminating man in the middle with a trusted certificate fails the bound login', async () => {
        for (const [target, maxVersion] of [
          [tls12, 'TLSv1.2'],
          ...(version === '13' ? [[tls13, 'TLSv1.3'] as const] : []),
        ] as const) {
          const relay = await tlsRelay(mitmCerts, target.directTlsPort, certs.ca, maxVersion);
          relays.push(relay.server);
          const err = await loginFailure({ host: '127.0.0.1', port: relay.port, directTls: true }, [certs.ca, mitmCerts.ca]);
          expect(err.code).toBe('auth-failed');
          // The server rejects the binding (Prosody: malformed-request, "Invalid channel binding value"), not the password.
          expect(err.message).toMatch(/malformed-request|not-authorized/);
          expect(err.message).not.toContain(PASSWORD);
        }
        // The control: through the same relay, a login the client cannot bind (TLS 1.3 on its side,
        // and a server that binds only below it) succeeds, so it is the binding that failed above.
        const relay = await tlsRelay(mitmCerts, tls12.directTlsPort, certs.ca, 'TLSv1.3');
        relays.push(relay.server);
        expect(await login({ host: '127.0.0.1', port: relay.port, directTls: true }, [certs.ca, mitmCerts.ca])).toEqual({ mechanism: 'SCRAM-SHA-1', binding: 'n', protocol: 'tls' });
      });
    },
    version,
  );
}

prosodySuite('0.12');
prosodySuite('13');

function ejabberdSuite(version: '23.01' | '24.12'): void {
  describeWithEjabberd(
    `SCRAM channel binding against ejabberd ${version}`,
    () => {
      // Made in beforeAll: a run that filters these tests out creates nothing.
      let dir = '';
      let certs: TestCertificates;
      let server: EjabberdHandle;

      beforeAll(async () => {
        dir = mkdtempSync(join(tmpdir(), `xporta-cb-ejabberd${version}-`));
        certs = makeTestCertificates(dir);
        server = await startEjabberd({ version, certfile: certs.combined });
        await server.register('alice', 'localhost', PASSWORD);
      }, 120_000);

      afterAll(async () => {
        await server?.stop();
        if (dir) rmSync(dir, { recursive: true, force: true });
      });

      it('logs in with the mechanism and binding the server leads to', async () => {
        const got = await login({ host: '127.0.0.1', port: server.c2sPort, directTls: false }, [certs.ca]);
        // 23.01 lists no binding types and checks tls-unique even on TLS 1.3, which TLS 1.3 does
        // not define: no binding there. 24.12 lists tls-exporter (XEP-0440).
        expect(got).toEqual(version === '24.12' ? { mechanism: 'SCRAM-SHA-1-PLUS', binding: 'p=tls-exporter', protocol: 'tls' } : { mechanism: 'SCRAM-SHA-1', binding: 'n', protocol: 'tls' });
      });
    },
    version,
  );
}

ejabberdSuite('23.01');
ejabberdSuite('24.12');
