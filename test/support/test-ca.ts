/**
 * A throw-away certificate authority for TLS tests, made with the openssl command line: a CA
 * and a server certificate for `localhost` (subjectAltName DNS:localhost) signed by it.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCertificates {
  /** The CA certificate (PEM): what a client must trust. */
  readonly ca: string;
  /** The server certificate and its key (PEM files). */
  readonly cert: string;
  readonly key: string;
  /** Certificate and key in one PEM file (ejabberd's `certfiles`). */
  readonly combined: string;
}

export function makeTestCertificates(dir: string, name = 'localhost'): TestCertificates {
  const ca = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext.cnf`);
  const combined = join(dir, `${name}.pem`);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const run = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
  run(['req', '-x509', ...ec, '-keyout', caKey, '-out', ca, '-days', '2', '-subj', '/CN=xporta test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', ...ec, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
  writeFileSync(ext, `subjectAltName=DNS:${name}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  run(['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  writeFileSync(combined, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
  return { ca, cert, key, combined };
}

/** Puts `certs` where Prosody finds a VirtualHost's certificate: `<serverDir>/certs/<host>.crt` and `.key`. */
export function installProsodyCertificate(certs: TestCertificates, serverDir: string, host = 'localhost'): void {
  mkdirSync(join(serverDir, 'certs'), { recursive: true });
  copyFileSync(certs.cert, join(serverDir, 'certs', `${host}.crt`));
  copyFileSync(certs.key, join(serverDir, 'certs', `${host}.key`));
}
