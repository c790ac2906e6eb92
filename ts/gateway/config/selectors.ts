// Traffic selectors in the configuration: addresses, subnets and ranges, or %dynamic (the tunnel endpoint's
// own address), each optionally restricted to one protocol and port with strongSwan's suffix:
// "%dynamic[udp/1701]" (what L2TP/IPsec clients propose), "10.1.0.0/24[tcp]", "10.1.0.5[17/%any]".
import { got, Problems, stringList } from './check.js';
import { parseSelectorAddress, type SelectorAddress } from './values.js';

/** One IP protocol (0 = any) and port (0 = any) for every selector of one side. */
export interface ProtoPort {
  protocol: number;
  port: number;
}

export const ANY_PROTO_PORT: ProtoPort = Object.freeze({ protocol: 0, port: 0 });

/** Protocol names strongSwan's suffix takes (numbers work too). */
const PROTOCOLS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, gre: 47, ipv6: 41, ipv6icmp: 58, sctp: 132 };
/** Port names (numbers work too): l2f is the L2TP port, as strongSwan spells it. */
const PORTS: Record<string, number> = { l2f: 1701, l2tp: 1701, isakmp: 500, domain: 53, http: 80, https: 443 };

/**
 * A side's selectors: 'dynamic' or the list, and the protocol / port of its "[proto/port]" suffix, which
 * must be the same on every entry (one Quick Mode per pair carries one protocol and port).
 */
export function parseSelectors(p: Problems, at: string, v: unknown): { ts: SelectorAddress[] | 'dynamic'; protoPort: ProtoPort } {
  const none = { ts: 'dynamic' as const, protoPort: ANY_PROTO_PORT };
  if (v === undefined) return none;
  const list = stringList(p, at, v);
  if (!list) return none;
  const out: SelectorAddress[] = [];
  let protoPort: ProtoPort | undefined;
  let dynamic = false;
  for (const [where, text] of list) {
    const m = /^(.*?)\s*(?:\[([^\]]*)\])?$/.exec(text.trim())!;
    const pp = m[2] === undefined ? ANY_PROTO_PORT : parseProtoPort(p, where, m[2]);
    if (pp === undefined) continue;
    if (protoPort !== undefined && (protoPort.protocol !== pp.protocol || protoPort.port !== pp.port)) {
      p.error(where, `every selector of one side needs the same [protocol/port] (${text} differs from the first)`);
    }
    protoPort ??= pp;
    if (m[1] === '%dynamic' || m[1] === 'dynamic') {
      dynamic = true;
      continue;
    }
    const r = parseSelectorAddress(m[1]!);
    if (r.ok) out.push(r.value);
    else p.error(where, r.error);
  }
  if (dynamic && out.length > 0) p.error(at, '%dynamic stands alone: it cannot be listed with addresses');
  return { ts: dynamic ? 'dynamic' : out, protoPort: protoPort ?? ANY_PROTO_PORT };
}

/** "udp/1701", "17/%any", "tcp", "%any/443". */
function parseProtoPort(p: Problems, at: string, text: string): ProtoPort | undefined {
  const [proto = '', port, extra] = text.split('/').map((s) => s.trim().toLowerCase());
  const number = (s: string, names: Record<string, number>, max: number) =>
    s === '%any' || s === '' ? 0 : /^\d+$/.test(s) && Number(s) <= max ? Number(s) : names[s];
  const protocol = number(proto, PROTOCOLS, 255);
  const portNumber = port === undefined ? 0 : number(port, PORTS, 65535);
  if (extra !== undefined || protocol === undefined || portNumber === undefined) {
    return p.error(at, `[${text}] is not [protocol/port] (e.g. [udp/1701], [tcp], [17/%any]), ${got(text)}`);
  }
  if (portNumber !== 0 && protocol !== 6 && protocol !== 17 && protocol !== 132) return p.error(at, `a port needs protocol tcp, udp or sctp, not [${text}]`);
  return { protocol, port: portNumber };
}
