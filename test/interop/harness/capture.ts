// Packet capture inside a namespace (dumpcap) and decoding with tshark, decrypting IKEv1 and ESP
// with known keys, so a test can assert that Wireshark dissects what was on the wire without errors.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { NetnsPair, SideName, Availability } from './netns.js';
import { runCommand, sleep, stopChild } from './proc.js';
import { interopDir, removeOnExit } from './strongswan.js';
import type { CharonIkeKeys } from './charonlog.js';

// (pcap readers are re-exported by index.ts)

export function tsharkAvailable(): Availability {
  for (const bin of ['tshark', 'dumpcap']) {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    if (r.error || r.status !== 0) return { ok: false, why: `${bin} missing (package tshark; scripts/install-interop-deps.sh)` };
  }
  return { ok: true, why: 'tshark and dumpcap available' };
}

export interface CaptureOptions {
  /** capture filter (BPF); default: IKE, NAT-T and ESP */
  filter?: string;
  /** interface inside the namespace; default the side's veth */
  iface?: string;
  /** output file; default <interopDir>/<pair id>-<side>-<n>.pcapng */
  file?: string;
}

let captureCounter = 0;

export class Capture {
  private constructor(
    readonly file: string,
    private readonly child: ChildProcess,
    private readonly logFile: string,
  ) {}

  /** Starts dumpcap in the namespace and resolves once it is really capturing. */
  static async start(pair: NetnsPair, side: SideName, opts: CaptureOptions = {}): Promise<Capture> {
    const s = pair.side(side);
    const dir = interopDir();
    mkdirSync(dir, { recursive: true });
    const file = opts.file ?? path.join(dir, `${pair.id}-${s.side}-capture-${++captureCounter}.pcapng`);
    if (!opts.file) removeOnExit(file);
    const logFile = `${file}.log`;
    removeOnExit(logFile);
    const fd = openSync(logFile, 'w');
    let child: ChildProcess;
    try {
      child = pair.spawn(side, 'dumpcap', ['-q', '-i', opts.iface ?? s.veth, '-f', opts.filter ?? 'udp port 500 or udp port 4500 or esp', '-w', file], {
        stdio: ['ignore', fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    const cap = new Capture(file, child, logFile);
    // dumpcap prints "File: ..." once the capture is open and running
    for (let i = 0; i < 200; i++) {
      const log = readFileSync(logFile, 'utf8');
      if (log.includes('File:')) return cap;
      if (child.exitCode !== null || child.signalCode !== null) break;
      await sleep(25);
    }
    await stopChild(child, 'SIGKILL', 0);
    throw new Error(`dumpcap did not start: ${readFileSync(logFile, 'utf8').trim()}`);
  }

  /**
   * Stops the capture. dumpcap loses packets the kernel has not yet handed over when it is
   * interrupted right after the traffic, so it gets `drainMs` first (0.5 s was found enough here).
   */
  async stop(drainMs = 500): Promise<string> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      if (drainMs > 0) await sleep(drainMs);
      await stopChild(this.child, 'SIGINT', 5000);
    }
    if (!existsSync(this.file)) throw new Error(`no capture file: ${readFileSync(this.logFile, 'utf8')}`);
    return this.file;
  }
}

/** One row of Wireshark's IKEv1 decryption table. */
export interface TsharkIkeKey {
  /** initiator cookie, 16 hex */
  cookieI: string;
  /** phase 1 encryption key Ka, hex */
  ka: string;
}

/** One row of Wireshark's ESP SA table. Algorithm names are Wireshark's, e.g. "AES-CBC [RFC3602]". */
export interface TsharkEspSa {
  src: string;
  dst: string;
  /** 8 hex, no 0x */
  spi: string;
  encAlg: string;
  encKey: string;
  integAlg: string;
  integKey: string;
}

export interface TsharkKeys {
  ike?: TsharkIkeKey[];
  esp?: TsharkEspSa[];
}

/** strongSwan algorithm names (as in its proposals) -> Wireshark's ESP table names. */
export function wiresharkEspEnc(alg: string | undefined): string {
  if (!alg || alg === 'NULL') return 'NULL';
  if (alg.startsWith('AES_CBC')) return 'AES-CBC [RFC3602]';
  if (alg.startsWith('3DES_CBC')) return 'TripleDES-CBC [RFC2451]';
  if (alg.startsWith('DES_CBC')) return 'DES-CBC [RFC2405]';
  if (alg.startsWith('AES_CTR')) return 'AES-CTR [RFC3686]';
  const gcm = /^AES_GCM_(8|12|16)/.exec(alg);
  if (gcm) return `AES-GCM with ${gcm[1]} octet ICV [RFC4106]`;
  if (alg.startsWith('CHACHA20_POLY1305')) return 'ChaCha20 with Poly1305 [RFC7634]';
  return 'NULL';
}

export function wiresharkEspInteg(alg: string | undefined): string {
  switch (alg) {
    case 'HMAC_SHA1_96': return 'HMAC-SHA-1-96 [RFC2404]';
    case 'HMAC_SHA2_256_128': return 'HMAC-SHA-256-128 [RFC4868]';
    case 'HMAC_SHA2_384_192': return 'HMAC-SHA-384-192 [RFC4868]';
    case 'HMAC_SHA2_512_256': return 'HMAC-SHA-512-256 [RFC4868]';
    case 'HMAC_MD5_96': return 'HMAC-MD5-96 [RFC2403]';
    default: return 'NULL';
  }
}

/** Wireshark key rows from the keys strongSwan logged (see StrongSwanPeer.keys()). */
export function tsharkKeysFromCharon(keys: readonly CharonIkeKeys[]): TsharkKeys {
  const ike: TsharkIkeKey[] = [];
  const esp: TsharkEspSa[] = [];
  for (const k of keys) {
    if (k.cookieI && k.ka && !ike.some((r) => r.cookieI === k.cookieI)) ike.push({ cookieI: k.cookieI, ka: k.ka });
    for (const c of k.children) {
      for (const sa of c.sas) {
        if (!sa.encKey && !sa.integKey) continue;
        if (esp.some((r) => r.spi === sa.spi && r.src === sa.src && r.dst === sa.dst)) continue;
        esp.push({
          src: sa.src, dst: sa.dst, spi: sa.spi,
          encAlg: wiresharkEspEnc(sa.encAlg), encKey: sa.encKey,
          integAlg: wiresharkEspInteg(sa.integAlg), integKey: sa.integKey,
        });
      }
    }
  }
  return { ike, esp };
}

/** The tshark `-o` arguments that load these keys. */
export function tsharkKeyArgs(keys: TsharkKeys): string[] {
  const args: string[] = [];
  // the IKEv1 table wants the hex unquoted ("Length of Initiator's COOKIE must be 8 octets" otherwise)
  for (const k of keys.ike ?? []) args.push('-o', `uat:ikev1_decryption_table:${k.cookieI},${k.ka}`);
  if (keys.esp?.length) {
    args.push('-o', 'esp.enable_encryption_decode:TRUE', '-o', 'esp.enable_authentication_check:TRUE');
    for (const s of keys.esp) {
      const f = ['IPv4', s.src, s.dst, `0x${s.spi}`, s.encAlg, s.encKey ? `0x${s.encKey}` : '', s.integAlg, s.integKey ? `0x${s.integKey}` : ''];
      args.push('-o', `uat:esp_sa:${f.map((x) => `"${x}"`).join(',')}`);
    }
  }
  return args;
}

export interface TsharkResult {
  ok: boolean;
  /** tshark's output (one line per packet, or the full tree with verbose) */
  text: string;
  /** lines reporting malformed packets or dissector exceptions */
  malformed: string[];
  stderr: string;
}

/**
 * Dissects a capture with tshark, decrypting with `keys`. `verbose` prints the whole tree (-V),
 * `filter` is a display filter (-Y), `extraArgs` go to tshark as they are.
 */
export async function tsharkDecode(
  file: string,
  keys: TsharkKeys = {},
  opts: { verbose?: boolean; filter?: string; extraArgs?: string[] } = {},
): Promise<TsharkResult> {
  const args = ['-r', file, '-n', ...tsharkKeyArgs(keys)];
  if (opts.verbose) args.push('-V');
  if (opts.filter) args.push('-Y', opts.filter);
  args.push(...(opts.extraArgs ?? []));
  const r = await runCommand('tshark', args, { timeoutMs: 60_000 });
  const stderr = r.stderr
    .split('\n')
    .filter((l) => l && !l.includes('Running as user "root"'))
    .join('\n');
  const malformed = r.stdout.split('\n').filter((l) => /Malformed|Dissector bug|Exception occurred/i.test(l));
  return { ok: r.code === 0, text: r.stdout, malformed, stderr };
}
