/**
 * Which network addresses xporta may connect to on a caller's behalf. Only public unicast
 * addresses are allowed by default: loopback, unspecified, link-local, private (RFC 1918),
 * carrier-grade NAT, unique-local, multicast, broadcast, documentation/benchmarking/reserved
 * ranges, and IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4,
 * Teredo) are refused unless the operator's allow-list names them. ipaddr.js does the parsing,
 * so the legacy IPv4 notations (`127.1`, `0x7f000001`, `2130706433`, octal parts) are read as
 * the addresses they stand for.
 *
 * Nothing here resolves names or opens sockets: src/net/outgoing.ts applies the decision to the
 * addresses a name resolved to, just before connecting.
 */
import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** One `outgoing.allow` entry: an address range, or a host name allowed whatever it resolves to. */
export type AllowEntry = { readonly kind: 'range'; readonly range: [Address, number] } | { readonly kind: 'name'; readonly name: string };

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/;

/** Lower case, without a trailing dot or IPv6 brackets: the form names and literals are compared in. */
export function normaliseHost(host: string): string {
  let h = host.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** Parses an allow-list entry (`10.0.0.0/8`, `::1`, `127.0.0.1/32`, `xporta.internal`); throws with a reason. */
export function parseAllowEntry(entry: string): AllowEntry {
  const text = normaliseHost(entry.trim());
  if (text.includes('/')) {
    try {
      const [address, bits] = ipaddr.parseCIDR(text);
      // `::ffff:10.0.0.0/104` is the IPv4 range 10/8: addresses are compared in their IPv4 form.
      const mapped = address.kind() === 'ipv6' && bits >= 96 && (address as ipaddr.IPv6).isIPv4MappedAddress();
      return { kind: 'range', range: mapped ? [(address as ipaddr.IPv6).toIPv4Address(), bits - 96] : [address, bits] };
    } catch {
      throw new Error(`${JSON.stringify(entry)} is not a CIDR range`);
    }
  }
  if (ipaddr.isValid(text)) {
    const address = canonical(ipaddr.parse(text));
    return { kind: 'range', range: [address, address.kind() === 'ipv4' ? 32 : 128] };
  }
  if (!HOST_NAME.test(text)) throw new Error(`${JSON.stringify(entry)} is neither an address, a CIDR range nor a host name`);
  return { kind: 'name', name: text };
}

/** IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry. */
function canonical(address: Address): Address {
  return address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress() ? (address as ipaddr.IPv6).toIPv4Address() : address;
}

/** Parses an address in any notation ipaddr.js knows; undefined when it is not one. */
export function parseAddress(text: string): Address | undefined {
  const h = normaliseHost(text);
  // Zone ids (`fe80::1%eth0`) name link-local addresses, refused anyway; ipaddr.js keeps the zone aside.
  if (!ipaddr.isValid(h)) return undefined;
  try {
    return canonical(ipaddr.parse(h));
  } catch {
    return undefined;
  }
}

/** Whether a public, globally routed unicast address: the only kind allowed without the allow-list. */
export function isPublicUnicast(address: Address): boolean {
  const a = canonical(address);
  if (a.range() !== 'unicast') return false;
  if (a.kind() === 'ipv6') {
    const parts = (a as ipaddr.IPv6).parts;
    // ::/96, IPv4-compatible addresses (deprecated): the IPv4 address inside is not judged.
    if (parts.slice(0, 6).every((p) => p === 0)) return false;
  }
  return true;
}

/** The operator's allow-list applied to one destination. */
export class AddressPolicy {
  private readonly ranges: [Address, number][] = [];
  private readonly names = new Set<string>();

  constructor(allow: readonly string[]) {
    for (const entry of allow) {
      const parsed = parseAllowEntry(entry);
      if (parsed.kind === 'range') this.ranges.push(parsed.range);
      else this.names.add(parsed.name);
    }
  }

  /** A host name (as the URL gave it) the operator allowed whatever it resolves to. */
  allowsName(host: string): boolean {
    return this.names.has(normaliseHost(host));
  }

  /** Whether xporta may connect to `address` (any notation); unparseable text is refused. */
  allowsAddress(text: string): boolean {
    const address = parseAddress(text);
    if (!address) return false;
    if (this.ranges.some(([range, bits]) => range.kind() === address.kind() && address.match(range, bits))) return true;
    return isPublicUnicast(address);
  }
}
