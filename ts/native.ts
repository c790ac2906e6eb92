// Loads the C++ addon once. Every layer that has a native fast path (ts/crypto, ts/esp, ts/gateway) asks here,
// so there is one place that decides whether the addon is usable and one warning if it is not, and one
// typed description of what the addon exports (NativeAddon below; native/*.cc register it).
//
// Two binaries come from the same sources (binding.gyp): ikev1_native, the production addon, and
// ikev1_native_test, built with IKE_TEST_HOOKS, which adds the benchmark and fault-injection hooks
// (NativeTestAddon). The engine only ever loads the first; tests and benchmarks that need the hooks load the
// second with nativeTestAddon().
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { NativeCodes } from './native-codes.js';
import type { EspSa, EspSaStats } from './esp/types.js';

const require = createRequire(import.meta.url);
// dist/ts/native.js -> <package root>/build/Release/<name>.node
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** DhKey (native/dh.cc): one private DH value of a group, kept in C++. */
export interface NativeDhKey {
  generate(fullLengthExponent?: boolean): void;
  generateAsync(fullLengthExponent?: boolean): Promise<void>;
  importPrivateKey(privateKey: Uint8Array): void;
  /** With `out` (exactly publicLength bytes): written there and returned. */
  publicValue(out?: Uint8Array): Buffer;
  /** With `out` (exactly secretLength bytes): written there and returned. */
  computeSecret(peerPublic: Uint8Array, out?: Uint8Array): Buffer;
  computeSecretAsync(peerPublic: Uint8Array): Promise<Buffer>;
  /** A key pair for this empty key and g^xy with `peerPublic`, in one trip to the pool. */
  generateAndComputeAsync(peerPublic: Uint8Array, fullLengthExponent?: boolean): Promise<Buffer>;
  /** Bit length of the private value (tests check the exponent policy). */
  privateKeyBits(): number;
}

/** dhGroupInfo(id) (native/dh.cc): a group's parameters as the addon holds them. */
export interface NativeDhGroupInfo {
  id: number;
  kind: 'modp' | 'ecp';
  bits: number;
  publicLength: number;
  secretLength: number;
  /** MODP only: bits of the default (short) private exponent. */
  exponentBits?: number;
  /** The prime modulus (MODP) or the field prime (ECP), big-endian. */
  prime: Buffer;
}

/** EspSa (native/esp.cc): one unidirectional ESP SA; its batch calls are the ones EspSa declares. */
export interface NativeEspHandle extends Pick<EspSa, 'sealBatch' | 'openBatch'> {
  /** Test hook, refused unless the SA was created with allowInsecure. */
  sealWithIv(payload: Uint8Array, nextHeader: number, seq: bigint, iv: Uint8Array): Buffer;
  stats(): EspSaStats;
  sequence(): bigint;
  destroy(): void;
  /** The crypto engine chosen at construction. */
  engine(): 'ipsec-mb' | 'evp';
}
export type NativeEspSaConstructor = new (
  algorithm: string,
  outbound: boolean,
  spi: number,
  encKey: Uint8Array,
  integKey: Uint8Array,
  salt: Uint8Array,
  replayWindow: number,
  esn: boolean,
  allowInsecure: boolean,
  initialSequence?: bigint,
  engine?: 'auto' | 'evp' | 'ipsec-mb',
) => NativeEspHandle;

/** DataPlane (native/dataplane.cc): the TUN <-> ESP-in-UDP worker threads, one per TUN fd. */
export interface NativeDataPlane {
  /**
   * plain: plain ESP (IP protocol 50) on the raw socket instead of ESP in UDP to peerPort; transport: transport
   * mode (the host's own IPv4 packets, the IP header left off and rebuilt on the other side); pairSpi: the SPI of
   * the inbound SA of the same child, whose worker then owns this SA too (default: its own SPI).
   */
  addOutbound(sa: unknown, localTs: string[], remoteTs: string[], peerAddress: string, peerPort: number, plain?: boolean, transport?: boolean, pairSpi?: number): void;
  addInbound(sa: unknown, localTs: string[], remoteTs: string[], transport?: boolean): void;
  remove(spi: number, direction?: 'outbound' | 'inbound'): number;
  setPeer(spi: number, address: string, port: number): boolean;
  stats(): DataPlaneStats;
  sendIke(message: Uint8Array, address: string, port: number): void;
  sendKeepalive(address: string, port: number): void;
  port(): number;
  close(): void;
  ref(): void;
  unref(): void;
  /** '' when the raw ESP socket (plain ESP) is open, else why not (e.g. no CAP_NET_RAW). */
  plainEspError(): string;
}
export type NativeDataPlaneConstructor = new (
  tunFds: number | number[],
  bindAddress: string,
  port: number,
  onIke: (message: Buffer, address: string, port: number) => void,
) => NativeDataPlane;

/** UdpSocket (native/udp.cc): a batched (sendmmsg / recvmmsg) UDP socket. */
export interface NativeUdpSocket {
  /** `source`: the local address to send from ('' or undefined: the kernel's choice). */
  send(message: Uint8Array, address: string, port: number, prefix?: Uint8Array, source?: string): boolean;
  flush(): void;
  close(): void;
  ref(): void;
  unref(): void;
  port(): number;
  stats(): UdpSocketStats;
}
export type NativeUdpSocketConstructor = new (
  address: string,
  port: number,
  /** One datagram: [message, address, port, the local address it arrived on ('' if unknown)]. */
  onMessage: (datagram: unknown[]) => void,
  /** [errno, reason, address, port, ...] from the kernel's refusals. */
  onSendErrors: (failures: unknown[]) => void,
  recvBufferSize: number,
  sendBufferSize: number,
  holdMicros: number,
) => NativeUdpSocket;

/**
 * Everything the production addon exports. Hash and cipher arguments are the codes of ts/native-codes.ts
 * (native/codes.h); outputs go into the caller's `out` buffer, whose length says how much to write.
 */
export interface NativeAddon {
  /** The numbers of native/codes.h (test/native/codes.test.ts compares them with ts/native-codes.ts). */
  codes: NativeCodes;

  // native/dh.cc
  DhKey: new (group: number) => NativeDhKey;
  dhGroupInfo(id: number): NativeDhGroupInfo;

  // native/prf.cc
  hash(out: Uint8Array, alg: number, ...data: Uint8Array[]): void;
  prf(out: Uint8Array, alg: number, key: Uint8Array, ...data: Uint8Array[]): void;
  skeyidPsk(out: Uint8Array, alg: number, psk: Uint8Array, nonceI: Uint8Array, nonceR: Uint8Array): void;
  skeyidSig(out: Uint8Array, alg: number, nonceI: Uint8Array, nonceR: Uint8Array, gxy: Uint8Array): void;
  phase1Keys(out: Uint8Array, alg: number, skeyid: Uint8Array, gxy: Uint8Array, cookieI: Uint8Array, cookieR: Uint8Array): void;
  encryptionKey(out: Uint8Array, alg: number, skeyidE: Uint8Array): void;
  phase1Iv(out: Uint8Array, alg: number, gxi: Uint8Array, gxr: Uint8Array): void;
  phase2Iv(out: Uint8Array, alg: number, lastBlock: Uint8Array, messageId: number): void;
  keymat(
    out: Uint8Array,
    alg: number,
    skeyidD: Uint8Array,
    gxy: Uint8Array | null,
    protocol: number,
    spi: Uint8Array,
    nonceI: Uint8Array,
    nonceR: Uint8Array,
  ): void;
  phase1KeysPsk(
    out: Uint8Array,
    alg: number,
    psk: Uint8Array,
    nonceI: Uint8Array,
    nonceR: Uint8Array,
    gxy: Uint8Array,
    cookieI: Uint8Array,
    cookieR: Uint8Array,
    gxi: Uint8Array,
    gxr: Uint8Array,
    keyLength: number,
    ivLength: number,
  ): void;
  prfEqual(alg: number, key: Uint8Array, expected: Uint8Array, ...data: Uint8Array[]): boolean;
  randomBytes(out: Uint8Array): void;
  timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean;
  hashSize(alg: number): number;

  // native/cipher.cc
  cbcEncrypt(out: Uint8Array, cipher: number, key: Uint8Array, iv: Uint8Array, data: Uint8Array): void;
  cbcDecrypt(out: Uint8Array, cipher: number, key: Uint8Array, iv: Uint8Array, data: Uint8Array): void;

  // native/esp.cc
  EspSa: NativeEspSaConstructor;
  /** True when the addon was built with intel-ipsec-mb and this CPU runs it (native/esp_mb.cc). */
  espIpsecMb: boolean;
  /** "intel-ipsec-mb 1.3.0 avx512", or why that engine is unavailable. */
  espEngineInfo: string;

  // native/dataplane.cc
  DataPlane: NativeDataPlaneConstructor;
  openTun(name?: string, offload?: boolean, queues?: number): { fd: number; fds: number[]; name: string; offload: boolean };

  // native/udp.cc
  UdpSocket: NativeUdpSocketConstructor;

  // native/sig.cc: ECDSA over a digest the caller already has (IKEv1 signs HASH_I / HASH_R as it is), r | s
  ecdsaSignDigest(pkcs8Der: Uint8Array, digest: Uint8Array): Buffer;
  ecdsaVerifyDigest(spkiDer: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean;
}

/** The virtio-net header of a joined TUN write (native/dataplane_gso.h). */
export interface NativeVirtioHeader {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** The test build (ikev1_native_test, IKE_TEST_HOOKS): the production exports plus the hooks. */
export interface NativeTestAddon extends NativeAddon {
  testHooks: true;
  /** Plain EVP work on `batch` buffers of `size` bytes, `iterations` times, timed in C++: nanoseconds. */
  espRawEvpBench(algorithm: string, seal: boolean, size: number, batch: number, iterations: number): number;
  /** The same through intel-ipsec-mb's job API alone (throws where that engine cannot run the algorithm). */
  espRawMbBench(algorithm: string, seal: boolean, size: number, batch: number, iterations: number): number;
  /** Octets malloc has handed out (glibc, the whole process), -1 elsewhere: the native cost of SAs. */
  espMallocInUse(): number;
  /** The next `count` first-packet context builds (of SAs of this binary) fail as if out of memory. */
  espFailNextWarms(count: number): void;
  /** dataplane_gso.h without a TUN device: cut a TSO super-packet, join segments for one TUN write. */
  dataplaneOffloadTest: {
    cut(packet: Buffer, gsoType: number, gsoSize: number, csumStart: number): Buffer[];
    join(packets: Buffer[]): { count: number; header: NativeVirtioHeader; packet: Buffer };
  };
}

/** The names the production addon must not export (test/native/hooks.test.ts checks). */
export const TEST_HOOK_NAMES = ['testHooks', 'espRawEvpBench', 'espRawMbBench', 'espMallocInUse', 'espFailNextWarms', 'dataplaneOffloadTest'] as const;

interface Loaded<T> {
  addon: T | null;
  error: Error | null;
}

/**
 * A source build (build/Release) first: it is what `npm install` or `npm rebuild` made here, from these
 * sources. Else, for the production addon, the package's prebuilt binary for this platform, arch and libc
 * (prebuilds/, found by node-gyp-build; scripts/install-native.mjs).
 */
function load<T>(name: string): Loaded<T> {
  const built = path.join(packageRoot, 'build', 'Release', `${name}.node`);
  try {
    return { addon: require(built) as T, error: null };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND' || name !== 'ikev1_native') return { addon: null, error: e as Error };
  }
  let prebuilt: string;
  try {
    prebuilt = (require('node-gyp-build') as { resolve(dir: string): string }).resolve(packageRoot);
    if (!prebuilt.includes(`${path.sep}prebuilds${path.sep}`)) throw new Error('not a prebuilt binary');
  } catch {
    return { addon: null, error: new Error(`not built (no ${path.relative(packageRoot, built)}) and no prebuilt binary for ${process.platform}-${process.arch}`) };
  }
  try {
    return { addon: require(prebuilt) as T, error: null };
  } catch (e) {
    return { addon: null, error: e as Error };
  }
}

let loaded: Loaded<NativeAddon> | undefined;
let loadedTest: Loaded<NativeTestAddon> | undefined;

/** The production addon's exports, or null when it cannot be loaded (the reason is in nativeLoadError()). */
export function nativeAddon(): NativeAddon | null {
  if (loaded === undefined) {
    if (process.env.IKE_NO_NATIVE === '1') {
      loaded = { addon: null, error: new Error('disabled by IKE_NO_NATIVE=1') };
    } else {
      loaded = load<NativeAddon>('ikev1_native');
    }
    if (loaded.addon === null && process.env.IKE_NO_NATIVE !== '1') {
      process.stderr.write(
        `ikev1-engine: native addon not loaded (${loaded.error?.message.split('\n')[0]}); ` +
          'using the slower node:crypto implementation\n',
      );
    }
  }
  return loaded.addon;
}

export function nativeLoadError(): Error | null {
  nativeAddon();
  return loaded!.error;
}

/**
 * The test build of the addon (build/Release/ikev1_native_test.node), for tests and benchmarks that use its
 * hooks; null when it is not built or IKE_NO_NATIVE=1 (no warning: the engine never needs it). Its objects
 * are its own: an EspSa it creates shares nothing with the production addon's (a hook such as
 * espFailNextWarms acts on SAs of this binary only): hand its SAs to its own DataPlane, never to the
 * production addon's.
 */
export function nativeTestAddon(): NativeTestAddon | null {
  if (loadedTest === undefined) {
    loadedTest =
      process.env.IKE_NO_NATIVE === '1'
        ? { addon: null, error: new Error('disabled by IKE_NO_NATIVE=1') }
        : load<NativeTestAddon>('ikev1_native_test');
  }
  return loadedTest.addon;
}

export function nativeTestLoadError(): Error | null {
  nativeTestAddon();
  return loadedTest!.error;
}

// The counters the addon's objects report (native/dataplane.cc, native/udp.cc): their shape is the addon's,
// so it is declared here, where the gateway's modules take it from.

export interface DataPlaneSaStats {
  spi: number;
  direction: 'outbound' | 'inbound';
  /** Sealed (outbound) or delivered (inbound) packets, and their inner octets. */
  packets: number;
  bytes: number;
  authFailed: number;
  replay: number;
  selectorMismatch: number;
  malformed: number;
}

export interface DataPlaneWorkerStats {
  /** SAs this worker owns (seals or opens with). */
  sas: number;
  tunPackets: number;
  espSent: number;
  espReceived: number;
  delivered: number;
  handedOver: number;
}

export interface DataPlaneStats {
  /** Packets / octets read from the TUN device. */
  tunPackets: number;
  tunBytes: number;
  /** TCP super-packets the kernel handed over (TUN offload), each cut into MSS-sized packets (counted in tunPackets). */
  tsoPackets: number;
  /** Writes to the TUN device that carried several TCP segments joined (TUN offload; `delivered` counts the segments). */
  groPackets: number;
  /** ESP datagrams sent on the NAT-T socket. */
  espSent: number;
  /** ESP datagrams received that authenticated and passed the replay check; the others are in `drops`. */
  espReceived: number;
  /** Inner packets written to the TUN device. */
  delivered: number;
  ikeReceived: number;
  ikeSent: number;
  keepalives: number;
  /** Packets a worker gave to the worker that owns their SA (TUN queues are chosen by flow, not by SA). */
  handedOver: number;
  drops: {
    /** TUN packet that no outbound SA's selectors cover. */
    noOutboundSa: number;
    /** ESP with an SPI no inbound SA has. */
    unknownSpi: number;
    authFailed: number;
    replay: number;
    /** Authentic packet whose inner addresses are outside the SA's selectors. */
    selectorMismatch: number;
    /** Not IP, truncated, bad padding, next header neither 4 nor 41. */
    malformed: number;
    /** Outbound sequence number exhausted: rekey. */
    seqOverflow: number;
    sendFailed: number;
    tunWriteFailed: number;
    /** IKE datagrams dropped because JavaScript did not keep up (queue of 1024). */
    ikeQueueFull: number;
    /** Dummy packets (next header 59, RFC 4303 2.6), dropped by design. */
    dummy: number;
    other: number;
    /** The owning worker's queue was full, or the packet had been handed over too often (SAs moving meanwhile). */
    handoverDropped: number;
  };
  sas: DataPlaneSaStats[];
  /** Per worker (index = worker): how the SAs and the traffic are spread over the cores. */
  workers: DataPlaneWorkerStats[];
}

export interface UdpSocketStats {
  /** Datagrams handed to onMessage. */
  received: number;
  /** Datagrams the kernel accepted. */
  sent: number;
  /** Datagrams the kernel refused (reported to onError). */
  sendErrors: number;
  /** Received datagrams longer than a receive slot (64 KiB), dropped. */
  truncated: number;
  /** Datagrams dropped because the send queue was full. */
  queueFull: number;
  /** recvmmsg calls that returned datagrams (received / batches = datagrams per system call). */
  batches: number;
  /** Datagrams waiting in the send queue now. */
  queued: number;
}
