// Control plane of the tunnel data plane. The packets never come here: native worker threads, one per TUN
// queue (native/dataplane.cc, dataplane_worker.h), move them between a TUN device and ESP in UDP on the NAT-T
// port (RFC 3948) or plain ESP; each SA belongs to one worker (SPI % workers), which the kernel steers its ESP to.
// This module opens and configures the TUN device, installs and removes SAs, reads counters, and is the
// IKE endpoint of port 4500: the data plane owns that socket, hands up datagrams that carry the non-ESP
// marker (IKE) through `onIke`, and sends IKE with `sendIke` (the marker is added for you).
//
// An EspSa given to addOutbound/addInbound belongs to its worker thread until remove() or close(): its own
// methods (sealBatch, openBatch, stats, sequence, destroy) throw meanwhile. DataPlane.stats() has its counters.
import { execFile } from 'node:child_process';
import { closeSync } from 'node:fs';
import net from 'node:net';
import { nativeAddon, nativeLoadError, type DataPlaneStats, type NativeAddon, type NativeDataPlane } from '../native.js';

export type { DataPlaneSaStats, DataPlaneStats, DataPlaneWorkerStats } from '../native.js';
import { NativeEspSa } from '../esp/native-esp.js';
import type { EspSa } from '../esp/types.js';

/** The addon's part (native/dataplane.cc). */
type DataPlaneAddon = Pick<NativeAddon, 'DataPlane' | 'openTun'>;

function addon(): DataPlaneAddon {
  const a = nativeAddon();
  if (!a || typeof a.DataPlane !== 'function') {
    throw new Error(`the tunnel data plane needs the native addon (${nativeLoadError()?.message ?? 'DataPlane missing'})`);
  }
  return a;
}

export interface TunDevice {
  /** The open /dev/net/tun file descriptor (non-blocking). The device exists as long as it is open. */
  readonly fd: number;
  /** Every queue's fd (multi-queue device: one per data plane worker; else [fd]). */
  readonly fds: readonly number[];
  /** The kernel's name for it (the one asked for, or tunN). */
  readonly name: string;
  /** TCP segmentation / checksum offload is on: the kernel hands over up to 64 KiB TCP packets, the data plane cuts them. */
  readonly offload: boolean;
  /** Closes the fd: the kernel deletes the device with its addresses and routes. */
  close(): void;
}

export interface OpenTunOptions {
  /**
   * Default true: IFF_VNET_HDR with TCP segmentation and checksum offload. The kernel then passes TCP
   * super-packets of up to 64 KiB (one read instead of ~45) and the data plane cuts them into MSS-sized
   * packets before sealing (native/dataplane_gso.h). `offload` in the result says whether the kernel agreed.
   */
  offload?: boolean;
  /**
   * Default 1. More: a multi-queue device (IFF_MULTI_QUEUE), one fd per queue, for a data plane with that many
   * workers; the kernel spreads the packets over the queues by flow. 1 to 64.
   */
  queues?: number;
}

/**
 * Creates a TUN device (IFF_TUN | IFF_NO_PI: plain IP packets). Errors carry `code` ENOENT (no TUN driver),
 * EPERM / EACCES (needs CAP_NET_ADMIN), EBUSY (name taken) and say so in a sentence.
 */
export function openTun(name?: string, opts: OpenTunOptions = {}): TunDevice {
  const t = addon().openTun(name, opts.offload ?? true, opts.queues ?? 1);
  let open = true;
  return {
    fd: t.fd,
    fds: t.fds,
    name: t.name,
    offload: t.offload,
    close() {
      if (open) for (const fd of t.fds) closeSync(fd);
      open = false;
    },
  };
}

export interface TunConfig {
  /** Address with prefix length for the device (e.g. '10.99.1.1/32'); optional: the inner address may live elsewhere (lo). */
  address?: string;
  /** Default 1400: a 1500-octet path minus outer IPv4 (20), UDP (8) and ESP (at most 8 + 16 + 17 + 32) overhead. */
  mtu?: number;
  /**
   * Packets the kernel queues for the worker (default 2000; the kernel's default, 500, is too short: the TUN
   * driver drops when its queue is full, and at 1 Gbit/s a TCP burst fills 500 packets before the worker's
   * next batch; measured: 3.7 % loss with 500, none with 2000).
   */
  txQueueLength?: number;
  /** Prefixes routed into the tunnel (the remote traffic selectors). */
  routes?: string[];
  /** Preferred source address for the routes of its family (`ip route ... src`), e.g. the local inner address. */
  source?: string;
  /** The same for IPv6 routes. */
  source6?: string;
}

/** Brings the device up with `ip` (iproute2): address, MTU, link up, one route per remote selector. */
export async function configureTun(name: string, cfg: TunConfig = {}): Promise<void> {
  const mtu = cfg.mtu ?? 1400;
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw new RangeError('mtu must be an integer in [576, 65535]');
  const qlen = cfg.txQueueLength ?? 2000;
  if (!Number.isInteger(qlen) || qlen < 1 || qlen > 100_000) throw new RangeError('txQueueLength must be an integer in [1, 100000]');
  if (cfg.address !== undefined) checkCidr(cfg.address, 'address');
  for (const r of cfg.routes ?? []) checkCidr(r, 'routes[]');
  if (cfg.source !== undefined && net.isIP(cfg.source) === 0) throw new RangeError('source must be an IP address');
  if (cfg.source6 !== undefined && net.isIP(cfg.source6) !== 6) throw new RangeError('source6 must be an IPv6 address');
  if (cfg.address !== undefined) await ip(['addr', 'add', cfg.address, 'dev', name]);
  await ip(['link', 'set', 'dev', name, 'mtu', String(mtu), 'txqueuelen', String(qlen), 'up']);
  for (const r of cfg.routes ?? []) {
    const v6 = r.includes(':');
    const src = [cfg.source, cfg.source6].find((a) => a !== undefined && a.includes(':') === v6);
    await ip([v6 ? '-6' : '-4', 'route', 'add', r, 'dev', name, ...(src !== undefined ? ['src', src] : [])]);
  }
}

/**
 * A remote-access client's virtual IP (the address Mode-Config assigned) on the TUN device, and the routes of
 * the connection's remote selectors into the device with it as their source: the host's own traffic to the
 * server's networks then leaves from the address the server's selectors expect.
 */
export async function addVirtualIp(tun: string, address: string, routes: readonly string[]): Promise<void> {
  if (net.isIP(address) !== 4) throw new RangeError(`a virtual IP must be an IPv4 address, not ${address}`);
  for (const r of routes) checkCidr(r, 'routes[]');
  await ip(['addr', 'replace', `${address}/32`, 'dev', tun]);
  for (const r of routes) await ip(['-4', 'route', 'replace', r, 'dev', tun, 'src', address]);
}

/**
 * Takes a virtual IP off the TUN device. The kernel drops the routes whose source it was, so each route goes
 * back into the device with `source` (another virtual IP that still uses it, or none).
 */
export async function removeVirtualIp(tun: string, address: string, routes: readonly string[], source: (route: string) => string | undefined): Promise<void> {
  await ip(['addr', 'del', `${address}/32`, 'dev', tun]);
  for (const r of routes) {
    const src = source(r);
    await ip(['-4', 'route', 'replace', r, 'dev', tun, ...(src !== undefined ? ['src', src] : [])]);
  }
}

/** The routing table (and rule preference) of transport-mode traffic into the TUN device. */
export const TRANSPORT_TABLE = 4500;

export interface TransportRoute {
  /** The peer's address: packets to it of this protocol (and ports) go into the device. */
  peer: string;
  protocol: number;
  /** 0 = any. */
  localPort: number;
  remotePort: number;
  /** Our IKE and NAT-T ports: what leaves from them (IKE, ESP in UDP) never enters the device. */
  ikePorts: [number, number];
}

/**
 * Transport mode through the TUN device: the host's own packets to the peer of the selectors' protocol (and
 * ports) are steered into the device by policy routing (`ip rule ... lookup 4500`, table 4500: the peer via
 * the device). What the gateway itself sends the peer keeps the main table: rules of preference 4499 send
 * ESP (protocol 50) and UDP from our IKE and NAT-T ports there first. IPv4 only.
 */
export async function addTransportRoute(tun: string, r: TransportRoute): Promise<void> {
  await ip(['-4', 'route', 'replace', `${r.peer}/32`, 'dev', tun, 'table', String(TRANSPORT_TABLE)]);
  for (const rule of transportRules(r)) {
    // the bypass rules are shared by the routes to one peer: there already is fine
    await ip(['-4', 'rule', 'add', ...rule]).catch((e: Error) => {
      if (!/File exists/.test(e.message)) throw e;
    });
  }
}

export async function removeTransportRoute(r: TransportRoute): Promise<void> {
  for (const rule of transportRules(r)) await ip(['-4', 'rule', 'del', ...rule]).catch(() => undefined);
}

/** Why this selector cannot be routed into the device, or null. */
export function transportRouteProblem(r: TransportRoute): string | null {
  if (net.isIP(r.peer) !== 4) return `transport mode through the data plane is IPv4 only (peer ${r.peer})`;
  const ikePort = (r.protocol === 0 || r.protocol === 17) && r.localPort !== 0 && r.ikePorts.includes(r.localPort);
  if (ikePort || r.protocol === 50) return 'transport mode through the data plane cannot carry the gateway\'s own IKE / ESP';
  return null;
}

function transportRules(r: TransportRoute): string[][] {
  const to = ['to', `${r.peer}/32`];
  const main = ['lookup', 'main'];
  const bypass = [
    ['pref', String(TRANSPORT_TABLE - 1), ...to, 'ipproto', '50', ...main],
    ...r.ikePorts.map((port) => ['pref', String(TRANSPORT_TABLE - 1), ...to, 'ipproto', '17', 'sport', String(port), ...main]),
  ];
  const ports = [...(r.localPort !== 0 ? ['sport', String(r.localPort)] : []), ...(r.remotePort !== 0 ? ['dport', String(r.remotePort)] : [])];
  const proto = r.protocol !== 0 ? ['ipproto', String(r.protocol), ...ports] : [];
  return [...bypass, ['pref', String(TRANSPORT_TABLE), ...to, ...proto, 'lookup', String(TRANSPORT_TABLE)]];
}

function ip(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`ip ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}

function checkCidr(s: unknown, what: string): void {
  if (typeof s !== 'string') throw new TypeError(`${what} must be a string`);
  const [addr, bits, extra] = s.split('/');
  const family = net.isIP(addr ?? '');
  const max = family === 4 ? 32 : 128;
  const ok = family !== 0 && extra === undefined && (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max));
  if (!ok) throw new RangeError(`${what} '${s}' is not an address or CIDR prefix`);
}

function checkSelectors(list: unknown, what: string): string[] {
  if (!Array.isArray(list) || list.length === 0) throw new TypeError(`${what} must be a non-empty array of CIDR prefixes`);
  for (const s of list) checkCidr(s, what);
  return list as string[];
}

export interface Endpoint {
  address: string;
  port: number;
}

export interface OutboundSaSpec {
  /** Must equal sa.spi (the SPI the peer chose for this SA). */
  spi: number;
  /** An outbound EspSa of the native implementation. */
  sa: EspSa;
  /** Inner packets whose source lies in localTs and destination in remoteTs go through this SA. */
  localTs: string[];
  remoteTs: string[];
  /** Where the ESP-in-UDP datagrams go (normally the peer's address, port 4500); for plain ESP, the address. */
  peer: Endpoint;
  /**
   * Plain ESP (IP protocol 50, RFC 4303) on the data plane's raw socket instead of ESP in UDP: for SAs
   * negotiated without UDP encapsulation. Throws when the raw socket could not be opened (see plainEsp).
   */
  plain?: boolean;
  /**
   * The SPI of the inbound SA of the same child: the worker that owns that SA (SPI % workers) owns this one too,
   * so both directions of a child live on one core. Default: this SA's own SPI.
   */
  pairSpi?: number;
}

export interface InboundSaSpec {
  /** Must equal sa.spi (the SPI we chose). */
  spi: number;
  /** An inbound EspSa of the native implementation. */
  sa: EspSa;
  /** Opened packets must come from remoteTs and go to localTs, or they are dropped (selectorMismatch). */
  remoteTs: string[];
  localTs: string[];
}



export interface DataPlaneOptions {
  /**
   * A TUN device's fd (openTun().fd), or the fds of a multi-queue device (openTun().fds): one worker thread per
   * fd, each owning the SAs whose SPI % workers is its index. The data plane makes them non-blocking and never
   * closes them.
   */
  tunFd: number | readonly number[];
  /** Address of the NAT-T socket (default '0.0.0.0'; an IPv6 address makes an IPv6 socket). */
  address?: string;
  /** Default 4500 (RFC 3948); 0 picks a free port (tests). */
  port?: number;
  /** IKE messages received on the port, marker removed. Without it they are counted and dropped. */
  onIke?: (message: Buffer, from: Endpoint) => void;
}

export class DataPlane {
  private readonly n: NativeDataPlane;
  /** The bound UDP port. */
  readonly port: number;
  /**
   * Whether plain ESP (IP protocol 50) can be sent and received: the raw socket needs CAP_NET_RAW. Inbound
   * plain ESP is taken for every SA whenever it is open.
   */
  readonly plainEsp: boolean;
  /** Why not, when plainEsp is false. */
  readonly plainEspError: string;
  private closed = false;

  constructor(opts: DataPlaneOptions) {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('options must be an object');
    const address = opts.address ?? '0.0.0.0';
    if (net.isIP(address) === 0) throw new RangeError(`address '${address}' is not an IP address`);
    const onIke = opts.onIke;
    if (onIke !== undefined && typeof onIke !== 'function') throw new TypeError('onIke must be a function');
    const deliver = (m: Buffer, a: string, p: number) => {
      try {
        onIke?.(m, { address: a, port: p });
      } catch (e) {
        // Node 20 only warns about an exception thrown into a native callback: make it a real uncaught one.
        process.nextTick(() => {
          throw e;
        });
      }
    };
    this.n = new (addon().DataPlane)(typeof opts.tunFd === 'number' ? opts.tunFd : [...opts.tunFd], address, opts.port ?? 4500, deliver);
    this.port = this.n.port();
    this.plainEspError = this.n.plainEspError();
    this.plainEsp = this.plainEspError === '';
  }

  /** Installs an outbound SA: TUN packets matching its selectors are sealed and sent to `peer` (in UDP, or plain). */
  addOutbound(spec: OutboundSaSpec): void {
    const h = handleOf(spec.sa, spec.spi, 'outbound');
    if (typeof spec.peer !== 'object' || spec.peer === null) throw new TypeError('peer must be { address, port }');
    this.n.addOutbound(h, checkSelectors(spec.localTs, 'localTs'), checkSelectors(spec.remoteTs, 'remoteTs'), spec.peer.address, spec.peer.port, spec.plain === true, spec.sa.mode === 'transport', spec.pairSpi);
  }

  /** Installs an inbound SA: ESP with its SPI is opened, checked against its selectors and written to TUN. */
  addInbound(spec: InboundSaSpec): void {
    const h = handleOf(spec.sa, spec.spi, 'inbound');
    this.n.addInbound(h, checkSelectors(spec.localTs, 'localTs'), checkSelectors(spec.remoteTs, 'remoteTs'), spec.sa.mode === 'transport');
  }

  /** Removes the SA(s) with this SPI (both directions unless one is given); returns how many. They are the caller's again. */
  remove(spi: number, direction?: 'outbound' | 'inbound'): number {
    return this.n.remove(spi, direction);
  }

  /** Moves an outbound SA's peer (its NAT mapping changed, RFC 3947 5); false when no outbound SA has this SPI. */
  setPeer(spi: number, peer: Endpoint): boolean {
    if (typeof peer !== 'object' || peer === null) throw new TypeError('peer must be { address, port }');
    return this.n.setPeer(spi, peer.address, peer.port);
  }

  stats(): DataPlaneStats {
    return this.n.stats();
  }

  /** Sends an IKE message on the NAT-T port, the non-ESP marker in front (RFC 3948 2.2). Never blocks. */
  sendIke(message: Uint8Array, address: string, port: number): void {
    this.n.sendIke(message, address, port);
  }

  /** Sends a NAT keepalive (one octet 0xff, RFC 3948 2.3). */
  sendKeepalive(address: string, port: number): void {
    this.n.sendKeepalive(address, port);
  }

  /** An open data plane keeps the process alive, as a socket does; unref() lets it exit (ref() undoes that). */
  ref(): this {
    this.n.ref();
    return this;
  }
  unref(): this {
    this.n.unref();
    return this;
  }

  /** Stops the worker thread and closes the UDP socket; every SA is given back. The TUN fd stays open. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.n.close();
  }
}

/**
 * The addon object behind a native EspSa, after checking what the data plane needs of it. A transport mode SA
 * carries the host's own IPv4 packets (native/esp_transport.h): its selectors are the two hosts.
 */
function handleOf(sa: EspSa, spi: number, direction: 'outbound' | 'inbound'): unknown {
  if (!(sa instanceof NativeEspSa)) throw new TypeError("sa must be a native EspSa (createEspSa with implementation 'native' or 'auto')");
  if (sa.spi !== spi) throw new RangeError(`spi ${spi} is not the SA's SPI (${sa.spi})`);
  if (sa.direction !== direction) throw new TypeError(`add${direction === 'outbound' ? 'Outbound' : 'Inbound'} needs an ${direction} SA`);

  // NativeEspSa keeps the addon object in a private field; element access is TypeScript's sanctioned way in.
  return sa['h'];
}
