// Mode-Config attribute values (draft-dukes-ike-mode-cfg-02 3.3 and the Cisco Unity extensions) and the
// server's address pool. IPv4 only.
//   INTERNAL_IP4_ADDRESS / NETMASK / DNS / NBNS: 4 bytes each (DNS and NBNS may repeat).
//   INTERNAL_ADDRESS_EXPIRY: seconds (4 bytes).
//   UNITY_SPLIT_INCLUDE: 14 bytes per network: address (4), mask (4), then 6 bytes that Cisco documents as
//     protocol / source port / destination port and that racoon, strongSwan and Cisco clients send as zero
//     ("any"); we write zeros and ignore them on input.
//   UNITY_BANNER: text.
import { ModeCfgAttr, tlv, type Attribute } from '../isakmp/index.js';

export function ipv4Bytes(address: string): Buffer {
  const parts = address.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) throw new RangeError(`'${address}' is not an IPv4 address`);
  return Buffer.from(parts.map(Number));
}

export function ipv4String(b: Uint8Array, offset = 0): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

function ipv4Number(address: string): number {
  return ipv4Bytes(address).readUInt32BE(0);
}

function numberIpv4(n: number): string {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return ipv4String(b);
}

export function prefixMask(prefix: number): string {
  return numberIpv4(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
}

export function maskPrefix(mask: string): number {
  const n = ipv4Number(mask);
  let p = 0;
  while (p < 32 && (n & (0x80000000 >>> p)) !== 0) p++;
  if (((n << p) >>> 0) !== 0 && p < 32) throw new RangeError(`'${mask}' is not a contiguous netmask`);
  return p;
}

export interface Ipv4Subnet {
  address: string;
  prefix: number;
}

/** 'a.b.c.d/n' (host bits must be zero). */
export function parseSubnet(cidr: string): Ipv4Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr.trim());
  if (!m || Number(m[2]) > 32) throw new RangeError(`'${cidr}' is not an IPv4 subnet (a.b.c.d/n)`);
  const prefix = Number(m[2]);
  const n = ipv4Number(m[1]!);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  if (((n & ~mask) >>> 0) !== 0) throw new RangeError(`'${cidr}' has host bits set`);
  return { address: m[1]!, prefix };
}

export function encodeSplitInclude(subnets: readonly Ipv4Subnet[]): Buffer {
  const out = Buffer.alloc(14 * subnets.length);
  subnets.forEach((s, i) => {
    ipv4Bytes(s.address).copy(out, 14 * i);
    ipv4Bytes(prefixMask(s.prefix)).copy(out, 14 * i + 4);
  });
  return out;
}

export function decodeSplitInclude(b: Buffer): Ipv4Subnet[] | null {
  if (b.length % 14 !== 0) return null;
  const out: Ipv4Subnet[] = [];
  for (let o = 0; o < b.length; o += 14) {
    let prefix: number;
    try {
      prefix = maskPrefix(ipv4String(b, o + 4));
    } catch {
      return null;
    }
    out.push({ address: ipv4String(b, o), prefix });
  }
  return out;
}

/** What the server hands out (and the client reports). */
export interface ModeCfgConfig {
  address?: string;
  netmask?: string;
  dns: string[];
  nbns: string[];
  splitInclude: Ipv4Subnet[];
  banner?: string;
  expirySeconds?: number;
}

/** The attributes a client asks for in its CFG_REQUEST (empty values). */
export const DEFAULT_REQUEST_ATTRIBUTES: readonly number[] = [
  ModeCfgAttr.INTERNAL_IP4_ADDRESS,
  ModeCfgAttr.INTERNAL_IP4_NETMASK,
  ModeCfgAttr.INTERNAL_IP4_DNS,
  ModeCfgAttr.INTERNAL_IP4_NBNS,
  ModeCfgAttr.UNITY_SPLIT_INCLUDE,
  ModeCfgAttr.UNITY_BANNER,
];

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/**
 * Attributes carrying `config`. `wanted` (the types of a CFG_REQUEST) limits the answer to what was asked;
 * an empty request or null means "send everything" (push, or a client asking for nothing in particular).
 */
export function modeCfgAttributes(config: ModeCfgConfig, wanted: readonly number[] | null = null): Attribute[] {
  const want = (t: number) => wanted === null || wanted.length === 0 || wanted.includes(t);
  const a: Attribute[] = [];
  if (config.address !== undefined && want(ModeCfgAttr.INTERNAL_IP4_ADDRESS)) a.push(tlv(ModeCfgAttr.INTERNAL_IP4_ADDRESS, ipv4Bytes(config.address)));
  if (config.netmask !== undefined && want(ModeCfgAttr.INTERNAL_IP4_NETMASK)) a.push(tlv(ModeCfgAttr.INTERNAL_IP4_NETMASK, ipv4Bytes(config.netmask)));
  if (want(ModeCfgAttr.INTERNAL_IP4_DNS)) for (const d of config.dns) a.push(tlv(ModeCfgAttr.INTERNAL_IP4_DNS, ipv4Bytes(d)));
  if (want(ModeCfgAttr.INTERNAL_IP4_NBNS)) for (const d of config.nbns) a.push(tlv(ModeCfgAttr.INTERNAL_IP4_NBNS, ipv4Bytes(d)));
  if (config.expirySeconds !== undefined && want(ModeCfgAttr.INTERNAL_ADDRESS_EXPIRY)) a.push(tlv(ModeCfgAttr.INTERNAL_ADDRESS_EXPIRY, u32(config.expirySeconds)));
  if (config.splitInclude.length > 0 && want(ModeCfgAttr.UNITY_SPLIT_INCLUDE)) a.push(tlv(ModeCfgAttr.UNITY_SPLIT_INCLUDE, encodeSplitInclude(config.splitInclude)));
  if (config.banner !== undefined && want(ModeCfgAttr.UNITY_BANNER)) a.push(tlv(ModeCfgAttr.UNITY_BANNER, Buffer.from(config.banner, 'utf8')));
  return a;
}

/** Reads a REPLY / SET. Malformed values (wrong length) are skipped and listed in `ignored`. */
export function readModeCfgAttributes(attrs: readonly Attribute[]): { config: ModeCfgConfig; ignored: number[] } {
  const config: ModeCfgConfig = { dns: [], nbns: [], splitInclude: [] };
  const ignored: number[] = [];
  for (const at of attrs) {
    const v = at.value;
    const bytes = Buffer.isBuffer(v) ? v : null;
    const four = bytes !== null && bytes.length === 4;
    switch (at.type) {
      case ModeCfgAttr.INTERNAL_IP4_ADDRESS:
        if (four) config.address = ipv4String(bytes);
        else ignored.push(at.type);
        break;
      case ModeCfgAttr.INTERNAL_IP4_NETMASK:
        if (four) config.netmask = ipv4String(bytes);
        else ignored.push(at.type);
        break;
      case ModeCfgAttr.INTERNAL_IP4_DNS:
        if (four) config.dns.push(ipv4String(bytes));
        else ignored.push(at.type);
        break;
      case ModeCfgAttr.INTERNAL_IP4_NBNS:
        if (four) config.nbns.push(ipv4String(bytes));
        else ignored.push(at.type);
        break;
      case ModeCfgAttr.INTERNAL_ADDRESS_EXPIRY:
        if (four) config.expirySeconds = bytes.readUInt32BE(0);
        else if (typeof v === 'number') config.expirySeconds = v;
        else ignored.push(at.type);
        break;
      case ModeCfgAttr.UNITY_SPLIT_INCLUDE: {
        const s = bytes === null ? null : decodeSplitInclude(bytes);
        if (s) config.splitInclude.push(...s);
        else ignored.push(at.type);
        break;
      }
      case ModeCfgAttr.UNITY_BANNER:
        if (bytes !== null) config.banner = bytes.toString('utf8');
        else ignored.push(at.type);
        break;
      default:
        ignored.push(at.type);
    }
  }
  return { config, ignored };
}

export class AddressPoolExhausted extends Error {
  constructor(readonly pool: string, readonly inUse: number) {
    super(`address pool ${pool} is exhausted (${inUse} in use)`);
    this.name = 'AddressPoolExhausted';
  }
}

/**
 * Virtual IPv4 addresses for remote-access clients, from 'a.b.c.d/n' (network and broadcast addresses
 * excluded for n <= 30) or 'a.b.c.d-e.f.g.h'. An address belongs to one owner (e.g. an ISAKMP SA's cookies
 * or the XAUTH user) until released; the same owner asking again gets the same address.
 */
export class AddressPool {
  private readonly first: number;
  private readonly last: number;
  private readonly byOwner = new Map<string, number>();
  private readonly taken = new Set<number>();
  private cursor: number;

  constructor(readonly spec: string) {
    const s = spec.trim();
    if (s.includes('-')) {
      const [a, b] = s.split('-', 2) as [string, string];
      this.first = ipv4Number(a.trim());
      this.last = ipv4Number(b.trim());
      if (this.last < this.first) throw new RangeError(`address pool '${spec}': the range ends before it starts`);
    } else {
      const sub = parseSubnet(s);
      const base = ipv4Number(sub.address);
      const size = 2 ** (32 - sub.prefix);
      if (sub.prefix <= 30) {
        this.first = base + 1;
        this.last = base + size - 2;
      } else {
        this.first = base;
        this.last = base + size - 1;
      }
    }
    this.cursor = this.first;
  }

  get size(): number {
    return this.last - this.first + 1;
  }

  get inUse(): number {
    return this.taken.size;
  }

  /** Throws AddressPoolExhausted when every address is taken. */
  allocate(owner: string): string {
    const had = this.byOwner.get(owner);
    if (had !== undefined) return numberIpv4(had);
    if (this.taken.size >= this.size) throw new AddressPoolExhausted(this.spec, this.taken.size);
    // Round robin from the last allocation, so a just-released address is not handed out again at once.
    for (;;) {
      const a = this.cursor;
      this.cursor = a >= this.last ? this.first : a + 1;
      if (!this.taken.has(a)) {
        this.taken.add(a);
        this.byOwner.set(owner, a);
        return numberIpv4(a);
      }
    }
  }

  release(owner: string): boolean {
    const a = this.byOwner.get(owner);
    if (a === undefined) return false;
    this.byOwner.delete(owner);
    this.taken.delete(a);
    return true;
  }

  addressOf(owner: string): string | undefined {
    const a = this.byOwner.get(owner);
    return a === undefined ? undefined : numberIpv4(a);
  }

  /**
   * The prefixes a route to the pool needs: the subnet as configured, or for a range the fewest aligned
   * prefixes that cover exactly its addresses (10.8.0.10-10.8.0.20: .10/31, .12/30, .16/30, .20/32).
   */
  prefixes(): string[] {
    const s = this.spec.trim();
    if (!s.includes('-')) {
      const sub = parseSubnet(s);
      return [`${sub.address}/${sub.prefix}`];
    }
    const out: string[] = [];
    for (let a = this.first; a <= this.last; ) {
      // the largest block that starts at a (aligned) and ends within the range
      let bits = 0;
      while (bits < 32 && a % 2 ** (bits + 1) === 0 && a + 2 ** (bits + 1) - 1 <= this.last) bits++;
      out.push(`${numberIpv4(a)}/${32 - bits}`);
      a += 2 ** bits;
    }
    return out;
  }
}
