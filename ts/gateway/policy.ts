// The policy compiler: a connection of the configuration as the exchanges take it (phase 1 policy, child
// policies by PFS group, DPD), built once per connection instead of once per SA.
import type { Identity } from '../isakmp/index.js';
import { hostSelector, IkeError, type DpdPolicy, type IsakmpSa, type Phase1Policy, type Phase2Policy, type TrafficSelector } from '../ike/index.js';
import { retransmitPolicy, type ConnectionConfig, type GatewayConfig } from './config.js';
import type { ProtoPort } from './config/selectors.js';

interface Compiled {
  localAddress: string;
  phase1: Phase1Policy;
  children: Map<number, Phase2Policy[]>;
  dpd: DpdPolicy | undefined;
}

export class PolicyCompiler {
  private readonly compiled = new WeakMap<ConnectionConfig, Compiled>();

  constructor(
    private readonly config: GatewayConfig,
    /** plainEsp: the data plane can send plain ESP (IP protocol 50: its raw socket is open). */
    private readonly options: { asyncDh: boolean; plainEsp: () => boolean },
    /** The address we listen on (a connection's `local` overrides it). */
    private readonly localAddress: () => string,
  ) {}

  /** The connection by name; a POLICY error names the one that does not exist. */
  connection(name: string): ConnectionConfig {
    const c = this.find(name);
    if (!c) throw new IkeError('POLICY', `no connection named '${name}'`);
    return c;
  }

  /** Every configured connection, in file order. */
  all(): readonly ConnectionConfig[] {
    return this.config.connections;
  }

  find(name: string): ConnectionConfig | undefined {
    return this.config.connections.find((c) => c.name === name);
  }

  /** The connections that may answer a message 1 from `address`. */
  candidates(address: string): ConnectionConfig[] {
    return this.config.connections.filter((c) => c.remote === '%any' || c.remote === address);
  }

  /**
   * `local`: the address this exchange runs on, which is our identity when the connection's `localId` is
   * 'address' and no concrete address is configured (listening on 0.0.0.0 / ::).
   */
  phase1(c: ConnectionConfig, local?: string): Phase1Policy {
    const p = this.of(c).phase1;
    return local !== undefined && c.localId === 'address' && c.local === null && local !== this.localAddress() ? { ...p, localId: addressIdentity(local) } : p;
  }

  dpd(c: ConnectionConfig): DpdPolicy | undefined {
    return this.of(c).dpd;
  }

  /**
   * The connection's children as phase 2 takes them: one per pair of localTs x remoteTs of the same IP
   * version (each pair is its own Quick Mode and child SA, as strongSwan does for several selectors in
   * IKEv1, where one ID payload carries one selector); `pfs: true` without a group in a proposal uses the
   * IKE group. Shared by the SAs of the connection (one array per PFS group): callers copy before changing it.
   */
  children(c: ConnectionConfig, sa: IsakmpSa): Phase2Policy[] {
    // %dynamic with a [protocol/port] is the SA's own addresses: made for each SA, not shared
    if (hostBound(c)) return this.childPolicies(c, sa);
    const children = this.of(c).children;
    const group = c.pfs ? sa.proposal.group : 0;
    let p = children.get(group);
    if (p === undefined) children.set(group, (p = this.childPolicies(c, sa)));
    return p;
  }

  /**
   * Encapsulation whether or not there is a NAT: asked for, or a data plane that cannot send plain ESP (no
   * CAP_NET_RAW for its raw socket). Otherwise ESP goes in UDP only when NAT-D finds a NAT.
   */
  forceEncap(c: ConnectionConfig): boolean {
    return c.encap || (this.config.dataplane !== undefined && !this.options.plainEsp());
  }

  private of(c: ConnectionConfig): Compiled {
    const localAddress = this.localAddress();
    let s = this.compiled.get(c);
    // rebuilt if the listening address changed since (a 'local' identity is taken from it)
    if (s === undefined || s.localAddress !== localAddress) {
      const dpd: DpdPolicy | undefined = c.dpd.delaySeconds > 0 ? { delayMs: c.dpd.delaySeconds * 1000, timeoutMs: c.dpd.timeoutSeconds * 1000, action: c.dpd.action } : undefined;
      s = { localAddress, phase1: this.phase1Policy(c, localAddress), children: new Map(), dpd };
      this.compiled.set(c, s);
    }
    return s;
  }

  private phase1Policy(c: ConnectionConfig, localAddress: string): Phase1Policy {
    const localId: Identity = c.localId === 'address' ? addressIdentity(c.local ?? localAddress) : c.localId;
    return {
      name: c.name,
      mode: c.mode,
      proposals: c.ike,
      ...('kind' in c.auth
        ? { certs: { cert: c.auth.cert, chain: c.auth.chain, key: c.auth.key, trust: c.auth.trust } }
        : { psk: c.auth.psk, allowAggressivePsk: c.auth.allowAggressivePsk }),
      localId,
      remoteId: c.remoteId === 'any' ? undefined : c.remoteId,
      selection: c.selection,
      retransmit: retransmitPolicy(c),
      asyncDh: this.options.asyncDh,
      forceEncap: this.forceEncap(c),
      fragmentation: c.fragmentation.mode !== 'no',
    };
  }

  private childPolicies(c: ConnectionConfig, sa: IsakmpSa): Phase2Policy[] {
    const base = {
      name: c.name,
      proposals: c.esp.map((p) => (c.pfs && p.pfsGroup === undefined ? { ...p, pfsGroup: sa.proposal.group } : p)),
      mode: c.type,
      lifetimeSeconds: c.lifetime.espSeconds,
      lifetimeKilobytes: c.lifetime.espKilobytes,
      selection: c.selection,
      retransmit: retransmitPolicy(c),
      forceEncapsulation: this.forceEncap(c),
      asyncDh: this.options.asyncDh,
    };
    const side = (ts: TrafficSelector | undefined, pp: ProtoPort, host: string) =>
      ts !== undefined ? { ...ts, ...pp } : pp.protocol !== 0 || pp.port !== 0 ? { ...hostSelector(host), ...pp } : undefined;
    return selectorPairs(c.localTs, c.remoteTs).map(([l, r]) => ({
      ...base,
      localTs: side(l, c.localProtoPort, sa.local.address),
      remoteTs: side(r, c.remoteProtoPort, sa.remote.address),
    }));
  }
}

/** %dynamic with a protocol or port on either side: the selectors name this SA's own addresses. */
function hostBound(c: ConnectionConfig): boolean {
  const bound = (ts: ConnectionConfig['localTs'], pp: ProtoPort) => ts === 'dynamic' && (pp.protocol !== 0 || pp.port !== 0);
  return bound(c.localTs, c.localProtoPort) || bound(c.remoteTs, c.remoteProtoPort);
}

type Selectors = ConnectionConfig['localTs'];

/**
 * Every (local, remote) pair of two selector lists, in configuration order (local major); 'dynamic' is one
 * entry, the endpoint's own address (undefined: no ID payloads). A pair of an IPv4 and an IPv6 selector cannot
 * be one Quick Mode (no packet matches both) and is left out; the configuration check makes sure one is left.
 */
export function selectorPairs(localTs: Selectors, remoteTs: Selectors): [TrafficSelector | undefined, TrafficSelector | undefined][] {
  const list = (ts: Selectors) => (ts === 'dynamic' ? [undefined] : ts.map((id) => ({ id, protocol: 0, port: 0 })));
  const family = (ts: TrafficSelector | undefined) => (ts === undefined ? 0 : ts.id.kind.startsWith('ipv6') ? 6 : 4);
  const pairs: [TrafficSelector | undefined, TrafficSelector | undefined][] = [];
  for (const l of list(localTs)) {
    for (const r of list(remoteTs)) if (family(l) === 0 || family(r) === 0 || family(l) === family(r)) pairs.push([l, r]);
  }
  return pairs;
}

/**
 * RFC 3948 2.3: behind a NAT, a one-octet 0xff datagram to the peer's NAT-T port keeps the mapping alive.
 * Forced encapsulation counts as behind a NAT (phase 1 cannot tell them apart, and a forced tunnel often
 * crosses a NAT that NAT-D does not see). 0 = none.
 */
export function keepaliveSeconds(sa: IsakmpSa | null, c: ConnectionConfig | undefined): number {
  if (!sa || sa.nat.version === null || !(sa.nat.localBehindNat || sa.nat.encapForced === true)) return 0;
  return c?.natKeepaliveSeconds ?? 0;
}

function addressIdentity(address: string): Identity {
  return address.includes(':') ? { kind: 'ipv6', address } : { kind: 'ipv4', address };
}
