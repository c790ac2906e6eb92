// The "dataplane" section: the native TUN data plane (ts/gateway/dataplane.ts); absent = the host carries
// traffic itself.
//   "dataplane": { "tun": "ike0", "mtu": 1400, "offload": true, "workers": 2 }
import { availableParallelism } from 'node:os';
import { boolean, checkKeys, got, integer, object, string, type Problems } from './check.js';

export interface DataPlaneConfig {
  /** TUN device name (default 'ike0'). */
  tun: string;
  /** Default 1400. */
  mtu: number;
  /** TCP segmentation offload between the kernel and the data plane (default true). */
  offload: boolean;
  /**
   * Native worker threads, 1 to 64 (default: the cores, os.availableParallelism()). Each owns the SAs whose SPI %
   * workers is its index (an outbound SA goes with its inbound pair), with its own TUN queue and NAT-T socket.
   */
  workers: number;
}

export const DATAPLANE_KEYS = ['tun', 'mtu', 'offload', 'workers'];
/** The data plane's own limit (native/dataplane.cc). */
export const MAX_WORKERS = 64;

/** One worker per core, at most MAX_WORKERS. */
export function defaultWorkers(): number {
  return Math.min(MAX_WORKERS, Math.max(1, availableParallelism()));
}

export function parseDataPlane(p: Problems, v: unknown): DataPlaneConfig | undefined {
  if (v === undefined) return undefined;
  const o = object(p, 'dataplane', v);
  if (!o) return undefined;
  checkKeys(p, 'dataplane', o, DATAPLANE_KEYS);
  let tun = 'ike0';
  if (o.tun !== undefined) {
    const t = string(p, 'dataplane.tun', o.tun);
    // Linux interface names: at most 15 bytes, no '/' or white space
    if (t !== undefined && /^[A-Za-z0-9_.-]{1,15}$/.test(t)) tun = t;
    else if (t !== undefined) p.error('dataplane.tun', `must be an interface name of 1-15 letters, digits, '_', '.' or '-', ${got(t)}`);
  }
  return {
    tun,
    mtu: integer(p, 'dataplane.mtu', o.mtu, 576, 65535, 1400),
    offload: boolean(p, 'dataplane.offload', o.offload, true),
    workers: integer(p, 'dataplane.workers', o.workers, 1, MAX_WORKERS, defaultWorkers()),
  };
}
