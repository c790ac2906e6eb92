// The policy compiler: a connection of the configuration as the exchanges take it (phase 1 policy, child
// policies by PFS group, DPD), built once per connection instead of once per SA.
import type { Identity } from '../isakmp/index.js';
import { IkeError, type DpdPolicy, type IsakmpSa, type Phase1Policy, type Phase2Policy } from '../ike/index.js';
import { retransmitPolicy, type ConnectionConfig, type GatewayConfig } from './config.js';

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
    private readonly options: { asyncDh: boolean },
    /** The address we listen on (a connection's `local` overrides it). */
    private readonly localAddress: () => string,
  ) {}

  /** The connection by name; a POLICY error names the one that does not exist. */
  connection(name: string): ConnectionConfig {
    const c = this.find(name);
    if (!c) throw new IkeError('POLICY', `no connection named '${name}'`);
    return c;
  }

  find(name: string): ConnectionConfig | undefined {
    return this.config.connections.find((c) => c.name === name);
  }

  /** The connections that may answer a message 1 from `address`. */
  candidates(address: string): ConnectionConfig[] {
    return this.config.connections.filter((c) => c.remote === '%any' || c.remote === address);
  }

  phase1(c: ConnectionConfig): Phase1Policy {
    return this.of(c).phase1;
  }

  dpd(c: ConnectionConfig): DpdPolicy | undefined {
    return this.of(c).dpd;
  }

  /**
   * The connection's child as phase 2 takes it; `pfs: true` without a group in a proposal uses the IKE group.
   * Shared by the SAs of the connection (one array per PFS group): callers copy before changing it.
   */
  children(c: ConnectionConfig, sa: IsakmpSa): Phase2Policy[] {
    const children = this.of(c).children;
    const group = c.pfs ? sa.proposal.group : 0;
    let p = children.get(group);
    if (p === undefined) children.set(group, (p = [this.childPolicy(c, sa)]));
    return p;
  }

  /** Encapsulation whether or not there is a NAT: asked for, or the data plane (it speaks ESP in UDP only). */
  forceEncap(c: ConnectionConfig): boolean {
    return c.encap || this.config.dataplane !== undefined;
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

  private childPolicy(c: ConnectionConfig, sa: IsakmpSa): Phase2Policy {
    const selector = (ts: ConnectionConfig['localTs']) => (ts === 'dynamic' ? undefined : { id: ts[0]!, protocol: 0, port: 0 });
    return {
      name: c.name,
      proposals: c.esp.map((p) => (c.pfs && p.pfsGroup === undefined ? { ...p, pfsGroup: sa.proposal.group } : p)),
      mode: 'tunnel',
      localTs: selector(c.localTs),
      remoteTs: selector(c.remoteTs),
      lifetimeSeconds: c.lifetime.espSeconds,
      lifetimeKilobytes: c.lifetime.espKilobytes,
      selection: c.selection,
      retransmit: retransmitPolicy(c),
      forceEncapsulation: this.forceEncap(c),
      asyncDh: this.options.asyncDh,
    };
  }
}

/**
 * RFC 3948 2.3: behind a NAT, a one-octet 0xff datagram to the peer's NAT-T port keeps the mapping alive.
 * Forced encapsulation counts as behind a NAT (phase 1 cannot tell them apart, and a forced tunnel often
 * crosses a NAT that NAT-D does not see). 0 = none.
 */
export function keepaliveSeconds(sa: IsakmpSa | null, c: ConnectionConfig | undefined): number {
  if (!sa || sa.nat.version === null || !sa.nat.localBehindNat) return 0;
  return c?.natKeepaliveSeconds ?? 0;
}

function addressIdentity(address: string): Identity {
  return address.includes(':') ? { kind: 'ipv6', address } : { kind: 'ipv4', address };
}
