// A small reader for the capture files dumpcap writes (pcapng, or classic pcap), enough to get the
// UDP datagrams of an IKE exchange back out: IPv4 over Ethernet / Linux cooked / raw IP, no
// reassembly of IP fragments (IKE messages with PSK stay well under the veth MTU).
import { readFileSync } from 'node:fs';

export interface IpPacket {
  /** position in the file, from 0, counting every packet record */
  index: number;
  /** capture time, seconds since the epoch (fractional) */
  time: number;
  src: string;
  dst: string;
  /** IP protocol number: 17 UDP, 50 ESP */
  protocol: number;
  /** IP payload (the UDP header included for UDP) */
  payload: Buffer;
}

export interface UdpDatagram {
  index: number;
  time: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101;
const LINKTYPE_LINUX_SLL = 113;
const LINKTYPE_IPV4 = 228;
const LINKTYPE_LINUX_SLL2 = 276;

/** Every IPv4 packet of a pcap or pcapng file (other link-layer content is skipped). */
export function readPcapPackets(file: string | Buffer): IpPacket[] {
  const buf = typeof file === 'string' ? readFileSync(file) : file;
  const frames = buf.length >= 4 && buf.readUInt32BE(0) === 0x0a0d0d0a ? pcapngFrames(buf) : pcapFrames(buf);
  const out: IpPacket[] = [];
  frames.forEach((f, index) => {
    const ip = ipv4Start(f.linkType, f.data);
    if (ip < 0 || f.data.length < ip + 20) return;
    const d = f.data;
    if (d[ip]! >> 4 !== 4) return;
    const ihl = (d[ip]! & 0x0f) * 4;
    const total = d.readUInt16BE(ip + 2);
    const fragOff = d.readUInt16BE(ip + 6) & 0x3fff;
    if (fragOff !== 0) return; // a fragment: not reassembled
    const end = Math.min(d.length, ip + total);
    out.push({
      index,
      time: f.time,
      src: d.subarray(ip + 12, ip + 16).join('.'),
      dst: d.subarray(ip + 16, ip + 20).join('.'),
      protocol: d[ip + 9]!,
      payload: Buffer.from(d.subarray(ip + ihl, end)),
    });
  });
  return out;
}

/** The UDP datagrams of a capture, in capture order. */
export function readPcap(file: string | Buffer): UdpDatagram[] {
  const out: UdpDatagram[] = [];
  for (const p of readPcapPackets(file)) {
    if (p.protocol !== 17 || p.payload.length < 8) continue;
    const len = p.payload.readUInt16BE(4);
    out.push({
      index: p.index,
      time: p.time,
      src: p.src,
      dst: p.dst,
      srcPort: p.payload.readUInt16BE(0),
      dstPort: p.payload.readUInt16BE(2),
      payload: Buffer.from(p.payload.subarray(8, Math.min(p.payload.length, Math.max(8, len)))),
    });
  }
  return out;
}

export type UdpKind = 'ike' | 'esp' | 'keepalive';

export interface ClassifiedDatagram extends UdpDatagram {
  kind: UdpKind;
  /** port 4500 IKE message prefixed by the 4 zero bytes of RFC 3948 */
  nonEspMarker: boolean;
  /** the ISAKMP message (kind 'ike', marker removed) or the ESP packet (kind 'esp') */
  message: Buffer;
}

/**
 * Sorts datagrams into IKE / ESP-in-UDP / NAT-keepalive following RFC 3948: on port 4500 a
 * payload starting with four zero bytes (the non-ESP marker) is IKE, a single 0xff byte is a
 * keepalive, anything else is ESP. On any other port it is IKE.
 */
export function classifyUdp(d: UdpDatagram): ClassifiedDatagram {
  const natt = d.srcPort === 4500 || d.dstPort === 4500;
  if (natt) {
    if (d.payload.length === 1 && d.payload[0] === 0xff) return { ...d, kind: 'keepalive', nonEspMarker: false, message: d.payload };
    if (d.payload.length >= 4 && d.payload.readUInt32BE(0) === 0) {
      return { ...d, kind: 'ike', nonEspMarker: true, message: Buffer.from(d.payload.subarray(4)) };
    }
    return { ...d, kind: 'esp', nonEspMarker: false, message: d.payload };
  }
  return { ...d, kind: 'ike', nonEspMarker: false, message: d.payload };
}

interface Frame {
  linkType: number;
  time: number;
  data: Buffer;
}

function ipv4Start(linkType: number, d: Buffer): number {
  switch (linkType) {
    case LINKTYPE_ETHERNET: {
      let off = 12;
      let type = d.readUInt16BE(off);
      while (type === 0x8100 || type === 0x88a8) {
        off += 4; // VLAN tags
        type = d.readUInt16BE(off);
      }
      return type === 0x0800 ? off + 2 : -1;
    }
    case LINKTYPE_LINUX_SLL:
      return d.length >= 16 && d.readUInt16BE(14) === 0x0800 ? 16 : -1;
    case LINKTYPE_LINUX_SLL2:
      return d.length >= 20 && d.readUInt16BE(0) === 0x0800 ? 20 : -1;
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
      return 0;
    default:
      return -1;
  }
}

function pcapFrames(buf: Buffer): Frame[] {
  if (buf.length < 24) throw new RangeError('not a pcap file: too short');
  const magicBE = buf.readUInt32BE(0);
  const magicLE = buf.readUInt32LE(0);
  let le: boolean;
  let nano: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) {
    le = true;
    nano = magicLE === 0xa1b23c4d;
  } else if (magicBE === 0xa1b2c3d4 || magicBE === 0xa1b23c4d) {
    le = false;
    nano = magicBE === 0xa1b23c4d;
  } else {
    throw new RangeError('not a pcap or pcapng file');
  }
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linkType = u32(20) & 0x0fffffff;
  const frames: Frame[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    if (off + 16 + incl > buf.length) break; // truncated last record
    frames.push({ linkType, time: sec + frac / (nano ? 1e9 : 1e6), data: buf.subarray(off + 16, off + 16 + incl) });
    off += 16 + incl;
  }
  return frames;
}

function pcapngFrames(buf: Buffer): Frame[] {
  const frames: Frame[] = [];
  let le = true;
  let ifaces: { linkType: number; tsres: number }[] = [];
  let off = 0;
  while (off + 12 <= buf.length) {
    const typeBE = buf.readUInt32BE(off);
    if (typeBE === 0x0a0d0d0a) {
      // Section Header Block: the byte-order magic decides the endianness of this section
      le = buf.readUInt32LE(off + 8) === 0x1a2b3c4d;
      ifaces = [];
    }
    const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
    const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
    const type = u32(off);
    const len = u32(off + 4);
    if (len < 12 || off + len > buf.length) break;
    const body = off + 8;
    if (type === 1) {
      // Interface Description Block: link type, then options (if_tsresol = option 9)
      let tsres = 1e6;
      let o = body + 8;
      while (o + 4 <= off + len - 4) {
        const code = u16(o);
        const olen = u16(o + 2);
        if (code === 0) break;
        if (code === 9 && olen >= 1) {
          const v = buf[o + 4]!;
          tsres = v & 0x80 ? 2 ** (v & 0x7f) : 10 ** v;
        }
        o += 4 + ((olen + 3) & ~3);
      }
      ifaces.push({ linkType: u16(body), tsres });
    } else if (type === 6) {
      // Enhanced Packet Block
      const ifc = ifaces[u32(body)] ?? { linkType: LINKTYPE_ETHERNET, tsres: 1e6 };
      const ts = u32(body + 4) * 2 ** 32 + u32(body + 8);
      const cap = u32(body + 12);
      frames.push({ linkType: ifc.linkType, time: ts / ifc.tsres, data: buf.subarray(body + 20, body + 20 + cap) });
    } else if (type === 3) {
      // Simple Packet Block: no timestamp, interface 0
      const ifc = ifaces[0] ?? { linkType: LINKTYPE_ETHERNET, tsres: 1e6 };
      const orig = u32(body);
      const cap = Math.min(orig, len - 16);
      frames.push({ linkType: ifc.linkType, time: 0, data: buf.subarray(body + 4, body + 4 + cap) });
    }
    off += len;
  }
  return frames;
}
