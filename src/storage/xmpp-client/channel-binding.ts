/**
 * TLS channel binding data for SCRAM -PLUS, read from the client's side of the connection:
 * - `tls-exporter` (RFC 9266): 32 bytes of keying material, label `EXPORTER-Channel-Binding`,
 *   empty context; defined here for TLS 1.3 only (on TLS 1.2 it is safe only with the extended
 *   master secret, which Node does not report).
 * - `tls-unique` (RFC 5929 §3): the first Finished message of the latest handshake — the
 *   client's own in a full handshake, the server's in a resumed one; TLS 1.2 and older only
 *   (RFC 9266 §3: undefined in TLS 1.3).
 * - `tls-server-end-point` (RFC 5929 §4): the hash of the server certificate's DER, with the hash
 *   of its signature algorithm, SHA-256 for MD5 and SHA-1 (and, as Prosody does, for algorithms
 *   without a single hash such as Ed25519 or RSA-PSS).
 */
import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

export type ChannelBindingType = 'tls-exporter' | 'tls-unique' | 'tls-server-end-point';

/** XEP-0440: the binding types a server supports, listed in the stream features. */
export const NS_SASL_CB = 'urn:xmpp:sasl-cb:0';

/** Our order of preference: bound to this connection's keys first, to the certificate last. */
export const BINDING_PREFERENCE: readonly ChannelBindingType[] = ['tls-exporter', 'tls-unique', 'tls-server-end-point'];

/** The types computable on `socket`, in order of preference. */
export function computableBindings(socket: TLSSocket): ChannelBindingType[] {
  return BINDING_PREFERENCE.filter((type) => {
    try {
      return (channelBindingData(socket, type)?.length ?? 0) > 0;
    } catch {
      return false;
    }
  });
}

/** The binding data of `type` for `socket`, or undefined where the type is not defined. */
export function channelBindingData(socket: TLSSocket, type: ChannelBindingType): Buffer | undefined {
  const protocol = socket.getProtocol();
  if (type === 'tls-exporter') {
    return protocol === 'TLSv1.3' ? socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)) : undefined;
  }
  if (type === 'tls-unique') {
    if (protocol === null || protocol === 'TLSv1.3') return undefined;
    return socket.isSessionReused() ? socket.getPeerFinished() : socket.getFinished();
  }
  // getPeerCertificate, not getPeerX509Certificate: Node 20 answers the latter only once per socket.
  const raw = socket.getPeerCertificate().raw as Buffer | undefined;
  return raw && raw.length > 0 ? serverEndPoint(raw) : undefined;
}

// Signature algorithm OIDs (RFC 4055, 5758, 8017) → the hash they sign with.
const SIGNATURE_HASHES: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'md5',
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10040.4.3': 'sha1',
  '2.16.840.1.101.3.4.3.2': 'sha256',
};

/** RFC 5929 §4.1: the certificate's hash with the hash of its signature, SHA-256 for MD5/SHA-1. */
export function serverEndPoint(der: Buffer): Buffer {
  const signedWith = SIGNATURE_HASHES[signatureAlgorithmOid(der) ?? ''];
  const hash = signedWith === undefined || signedWith === 'md5' || signedWith === 'sha1' ? 'sha256' : signedWith;
  return createHash(hash).update(der).digest();
}

/** One DER TLV header at `offset`: where its contents start and how long they are. */
function tlv(der: Buffer, offset: number): { tag: number; start: number; length: number } | undefined {
  const tag = der[offset];
  let lengthByte = der[offset + 1];
  if (tag === undefined || lengthByte === undefined) return undefined;
  let start = offset + 2;
  let length = lengthByte;
  if (lengthByte & 0x80) {
    const bytes = lengthByte & 0x7f;
    if (bytes === 0 || bytes > 4) return undefined;
    length = 0;
    for (let i = 0; i < bytes; i++) {
      lengthByte = der[start + i];
      if (lengthByte === undefined) return undefined;
      length = length * 256 + lengthByte;
    }
    start += bytes;
  }
  return start + length <= der.length ? { tag, start, length } : undefined;
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE { OID, … }, … } */
export function signatureAlgorithmOid(der: Buffer): string | undefined {
  const certificate = tlv(der, 0);
  if (certificate?.tag !== 0x30) return undefined;
  const tbs = tlv(der, certificate.start);
  if (tbs?.tag !== 0x30) return undefined;
  const algorithm = tlv(der, tbs.start + tbs.length);
  if (algorithm?.tag !== 0x30) return undefined;
  const oid = tlv(der, algorithm.start);
  if (oid?.tag !== 0x06) return undefined;
  return decodeOid(der.subarray(oid.start, oid.start + oid.length));
}

function decodeOid(bytes: Buffer): string | undefined {
  const first = bytes[0];
  if (first === undefined) return undefined;
  const parts = [Math.min(2, Math.floor(first / 40)), first - Math.min(2, Math.floor(first / 40)) * 40];
  let value = 0;
  for (const byte of bytes.subarray(1)) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}
