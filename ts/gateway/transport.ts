// The transport and data-plane binding: the IKE socket, the NAT-T socket (or the native data plane that owns
// the NAT-T port and the TUN device), and the child SAs' ESP SAs as the data plane carries them.
import type { Identity } from '../isakmp/index.js';
import { idToString } from '../isakmp/index.js';
import { AddressPool, IkeError, type Endpoint } from '../ike/index.js';
import type { ConnectionConfig, GatewayConfig } from './config.js';
import { addTransportRoute, addVirtualIp, configureTun, DataPlane, openTun, removeTransportRoute, removeVirtualIp, transportRouteProblem, type DataPlaneStats, type TransportRoute, type TunDevice } from './dataplane.js';
import { openSocket, type GatewaySocket } from './sockets.js';
import type { Child } from './sa-table.js';

/** RFC 3948: IKE on the NAT-T port is prefixed with four zero bytes (the non-ESP marker). */
export const NON_ESP_MARKER = Buffer.alloc(4);
/** RFC 3948 2.3: the NAT keepalive is one octet, 0xff. */
const KEEPALIVE = Buffer.from([0xff]);

export interface TransportHandlers {
  /**
   * IKE from the IKE port (natt false) or the NAT-T port, the non-ESP marker taken off; `local`: the address
   * it came to, where the socket knows it (IP_PKTINFO).
   */
  ike(message: Buffer, from: Endpoint, natt: boolean, local?: string): void;
  /** ESP in UDP that arrived on our own NAT-T socket (no data plane). */
  esp(message: Buffer, from: Endpoint): void;
  onError(message: string, to: Endpoint): void;
}

export class Transport {
  private ikeSocket: GatewaySocket | null = null;
  /** The NAT-T port: our own socket, unless the TUN data plane owns it. */
  private nattSocket: GatewaySocket | null = null;
  private dp: DataPlane | null = null;
  private tun: TunDevice | null = null;
  private bound = { ike: 0, natt: 0 };
  /** Transport-mode routes into the TUN device (by rule text) and how many outbound SAs use each. */
  private readonly routes = new Map<string, { route: TransportRoute; users: number; ready: Promise<void> }>();
  /** Remote-access clients' virtual IPs on the TUN device, how many ISAKMP SAs hold each, their routes. */
  private readonly vips = new Map<string, { users: number; routes: readonly string[] }>();
  /** The `ip` commands of virtual IPs, one after the other (an add and the remove of a predecessor interleave otherwise). */
  private vipWork: Promise<void> = Promise.resolve();
  /** The source address the device's routes were set up with, what a route returns to without a virtual IP. */
  private tunSource: string | undefined;
  private onError: TransportHandlers['onError'] = () => undefined;
  /** The address we listen on. */
  address: string;

  constructor(
    private readonly config: GatewayConfig,
    private readonly nativeUdp: boolean,
  ) {
    this.address = config.listen.address;
  }

  get ports(): { ike: number; natt: number } {
    return { ...this.bound };
  }

  /** The bound IKE port, without the copy `ports` makes (asked once per exchange). */
  get ikePort(): number {
    return this.bound.ike;
  }

  get dataplane(): DataPlane | null {
    return this.dp;
  }

  get tunName(): string | null {
    return this.tun?.name ?? null;
  }

  async open(h: TransportHandlers): Promise<void> {
    const { address, port, nattPort } = this.config.listen;
    this.address = address;
    this.onError = h.onError;
    this.ikeSocket = await openSocket(address, port, { onMessage: (msg, from, local) => h.ike(msg, from, false, local), onError: h.onError }, this.nativeUdp);
    try {
      if (this.config.dataplane) {
        await this.openDataPlane(address, nattPort, h);
        this.bound = { ike: this.ikeSocket.port, natt: this.dp!.port };
      } else {
        const onMessage = (msg: Buffer, from: Endpoint, local?: string) => {
          // a marker of 4 zero bytes = IKE; 1 byte 0xff = NAT keepalive (RFC 3948 2.3); anything else is ESP
          if (msg.length >= 4 + 28 && msg.subarray(0, 4).equals(NON_ESP_MARKER)) h.ike(msg.subarray(4), from, true, local);
          else if (msg.length >= 8) h.esp(msg, from);
        };
        this.nattSocket = await openSocket(address, nattPort, { onMessage, onError: h.onError }, this.nativeUdp);
        this.bound = { ike: this.ikeSocket.port, natt: this.nattSocket.port };
      }
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  /**
   * The TUN device and the native worker that owns the NAT-T port: ESP never reaches JavaScript, IKE on that
   * port comes up through onIke. Routes to every configured remote selector point into the device.
   */
  private async openDataPlane(address: string, nattPort: number, h: TransportHandlers): Promise<void> {
    const d = this.config.dataplane!;
    const routes = new Set<string>();
    let source: string | undefined;
    for (const c of this.config.connections) {
      if (c.remoteTs !== 'dynamic') for (const ts of c.remoteTs) routes.add(selectorCidr(ts));
      // a remote-access server's clients are the addresses it hands out: traffic to them goes into the device
      if (c.modeConfig?.role === 'server' && c.modeConfig.pool !== undefined) for (const p of new AddressPool(c.modeConfig.pool).prefixes()) routes.add(p);
      if (source === undefined && c.localTs !== 'dynamic' && c.localTs[0]?.kind === 'ipv4') source = c.localTs[0].address;
    }
    this.tunSource = source;
    this.tun = openTun(d.tun, { offload: d.offload, queues: d.workers });
    await configureTun(this.tun.name, { mtu: d.mtu, routes: [...routes], source });
    this.dp = new DataPlane({ tunFd: this.tun.fds, address, port: nattPort, onIke: (m, from) => h.ike(Buffer.from(m), from, true) });
  }

  /** Lets what is queued leave, then closes everything; nothing is left open. */
  async close(): Promise<void> {
    // the rules outlive the device (its routes go with it)
    const routes = [...this.routes.values()];
    this.routes.clear();
    await Promise.all(routes.map((r) => r.ready.then(() => removeTransportRoute(r.route)).catch(() => undefined)));
    this.vips.clear();
    await this.vipWork; // the device (and the addresses on it) goes below
    await Promise.all([this.ikeSocket?.close(), this.nattSocket?.close()]);
    this.ikeSocket = this.nattSocket = null;
    this.dp?.close();
    this.tun?.close();
    this.dp = null;
    this.tun = null;
  }

  /** `source`: the local address to send from (a wildcard listener answers from where the peer wrote to). */
  send(msg: Buffer, to: Endpoint, natt: boolean, source?: string): void {
    if (natt && this.dp) this.dp.sendIke(msg, to.address, to.port);
    else if (natt) this.nattSocket?.send(msg, to, NON_ESP_MARKER, source);
    else this.ikeSocket?.send(msg, to, undefined, source);
  }

  /** Listening on 0.0.0.0 / ::: our address differs per peer, and each datagram says which it is. */
  get wildcard(): boolean {
    return this.address === '0.0.0.0' || this.address === '::';
  }

  sendKeepalive(to: Endpoint): void {
    if (this.dp) this.dp.sendKeepalive(to.address, to.port);
    else this.nattSocket?.send(KEEPALIVE, to);
  }

  /** An ESP packet we sealed ourselves, in UDP to the peer's NAT-T port (without the data plane: Gateway.sendEsp checks). */
  sendEsp(packet: Buffer, to: Endpoint): void {
    this.nattSocket?.send(packet, to);
  }

  stats(): DataPlaneStats | null {
    return this.dp?.stats() ?? null;
  }

  // ---- the data plane's SA table ----

  /** Hands a child's ESP SAs to the data plane (each direction as asked). */
  install(child: Child, peer: Endpoint, which: { outbound: boolean; inbound: boolean }): void {
    const dp = this.dp!;
    const localTs = [selectorCidr(child.sa.localTs.id)];
    const remoteTs = [selectorCidr(child.sa.remoteTs.id)];
    const route = child.sa.mode === 'transport' ? transportRoute(child, this.bound) : null;
    const problem = route && transportRouteProblem(route);
    if (problem) throw new IkeError('POLICY', problem);
    // negotiated without UDP encapsulation (no NAT, encap off): plain ESP, IP protocol 50
    const plain = !child.sa.encapsulation;
    if (which.outbound) {
      // both directions of a child on one worker: the inbound SPI chooses it
      dp.addOutbound({ spi: child.sa.spiOut.readUInt32BE(0), sa: child.outbound, localTs, remoteTs, peer, plain, pairSpi: child.sa.spiIn.readUInt32BE(0) });
      if (route) this.useRoute(route, 1);
    }
    if (which.inbound) dp.addInbound({ spi: child.sa.spiIn.readUInt32BE(0), sa: child.inbound, localTs, remoteTs });
  }

  /** Takes a child out of the data plane: its outbound (if it was installed) and its inbound. */
  uninstall(child: Child, outbound: boolean, inbound: boolean): void {
    if (!this.dp) return;
    if (outbound && this.dp.remove(child.sa.spiOut.readUInt32BE(0), 'outbound') > 0 && child.sa.mode === 'transport') this.useRoute(transportRoute(child, this.bound), -1);
    if (inbound) this.dp.remove(child.sa.spiIn.readUInt32BE(0), 'inbound');
  }

  /** One outbound transport-mode SA more (+1) or fewer (-1) on a route: added with the first, removed with the last. */
  private useRoute(route: TransportRoute, delta: 1 | -1): void {
    const key = JSON.stringify(route);
    const r = this.routes.get(key);
    const failed = (e: unknown) => this.onError(`transport-mode route to ${route.peer}: ${(e as Error).message}`, { address: route.peer, port: 0 });
    if (delta === 1 && r) r.users++;
    else if (delta === 1) this.routes.set(key, { route, users: 1, ready: addTransportRoute(this.tun!.name, route).catch(failed) });
    else if (r && --r.users === 0) {
      this.routes.delete(key);
      void r.ready.then(() => removeTransportRoute(route)).catch(failed);
    }
  }

  /**
   * A remote-access client's virtual IP, one ISAKMP SA more (+1) or fewer (-1) holding it: put on the TUN
   * device with the routes of `routes` (the connection's remote selectors) by the first, taken off by the
   * last. Without the data plane there is no device to put it on: nothing happens.
   */
  useVirtualIp(address: string, routes: readonly string[], delta: 1 | -1): void {
    const tun = this.tun?.name;
    if (tun === undefined) return;
    const v = this.vips.get(address);
    const failed = (e: unknown) => this.onError(`virtual IP ${address}: ${(e as Error).message}`, { address, port: 0 });
    if (delta === 1 && v) v.users++;
    else if (delta === 1) {
      this.vips.set(address, { users: 1, routes });
      this.vipWork = this.vipWork.then(() => addVirtualIp(tun, address, routes)).catch(failed);
    } else if (v && --v.users === 0) {
      this.vips.delete(address);
      // a route another virtual IP still uses keeps that one as its source
      const source = (r: string) => [...this.vips].find(([, o]) => o.routes.includes(r))?.[0] ?? this.tunSource;
      this.vipWork = this.vipWork.then(() => removeVirtualIp(tun, address, v.routes, source)).catch(failed);
    }
  }

  /** The peer moved (NAT mapping): its children's ESP follows. */
  setPeer(children: readonly Child[], to: Endpoint): void {
    if (this.dp) for (const c of children) this.dp.setPeer(c.sa.spiOut.readUInt32BE(0), to);
  }
}

/** The traffic of a transport-mode child that policy routing steers into the TUN device. */
function transportRoute(child: Child, ports: { ike: number; natt: number }): TransportRoute {
  const { localTs, remoteTs } = child.sa;
  const peer = remoteTs.id.kind === 'ipv4' || remoteTs.id.kind === 'ipv6' ? remoteTs.id.address : idToString(remoteTs.id);
  return { peer, protocol: remoteTs.protocol || localTs.protocol, localPort: localTs.port, remotePort: remoteTs.port, ikePorts: [ports.ike, ports.natt] };
}

/** The routes a remote-access client's virtual IP becomes the source of: the connection's IPv4 remote selectors. */
export function virtualIpRoutes(c: ConnectionConfig | undefined): string[] {
  if (c === undefined || c.remoteTs === 'dynamic') return [];
  return c.remoteTs.filter((ts) => ts.kind === 'ipv4' || ts.kind === 'ipv4-subnet').map(selectorCidr);
}

/** A selector as the data plane takes it: an address or a CIDR prefix (ranges are not supported there). */
export function selectorCidr(ts: Identity): string {
  switch (ts.kind) {
    case 'ipv4':
      return `${ts.address}/32`;
    case 'ipv6':
      return `${ts.address}/128`;
    case 'ipv4-subnet':
    case 'ipv6-subnet':
      return ts.subnet;
    default:
      throw new IkeError('POLICY', `the TUN data plane takes addresses and subnets as traffic selectors, not ${idToString(ts)}`);
  }
}
