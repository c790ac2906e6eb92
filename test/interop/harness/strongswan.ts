// A real strongSwan (charon 5.9.x) IKEv1 peer running in one namespace of a NetnsPair.
//
// Each peer gets a private directory: strongswan.conf, swanctl.conf, the vici socket, the log and a
// directory bind-mounted over /run (charon's pid file is hard-wired to /var/run/charon.pid, so a
// second charon on the machine would refuse to start; `ip netns exec` already runs the command in
// its own mount namespace, so the bind mount stays private to this charon). charon is driven with
// swanctl over that vici socket. The log is written at ike/chd level 4, which includes the keys.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { spawnSync, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { NetnsPair, NetnsSide, SideName, Availability } from './netns.js';
import { LoggedDaemon } from './logfile.js';
import { runCommand, sleep, stopChild, registerCleanup, type RunResult } from './proc.js';
import { parseCharonKeys, type CharonIkeKeys } from './charonlog.js';
import { parseViciPretty, type ViciSection } from './vici.js';

export const CHARON = '/usr/lib/ipsec/charon';

/** Is charon + swanctl installed (scripts/install-interop-deps.sh)? */
export function charonAvailable(): Availability {
  if (!existsSync(CHARON)) return { ok: false, why: `${CHARON} missing (run scripts/install-interop-deps.sh as root)` };
  const r = spawnSync('swanctl', ['--version'], { encoding: 'utf8', timeout: 5000 });
  // swanctl --version exits 2 here (it also tries the default vici socket): look at what it printed
  if (r.error || !`${r.stdout}${r.stderr}`.includes('swanctl')) return { ok: false, why: 'swanctl missing (package strongswan-swanctl)' };
  // an enforcing AppArmor profile (Debian/Ubuntu ship one) denies charon our config/log/socket paths
  try {
    const profiles = readFileSync('/sys/kernel/security/apparmor/profiles', 'utf8');
    if (/^\/usr\/lib\/ipsec\/charon \(enforce\)/m.test(profiles)) {
      return { ok: false, why: 'AppArmor enforces the charon profile (scripts/install-interop-deps.sh unloads it)' };
    }
  } catch {
    /* no AppArmor */
  }
  const v = spawnSync(CHARON, ['--version'], { encoding: 'utf8', timeout: 5000 });
  return { ok: true, why: (v.stdout || v.stderr || '').trim().split('\n')[0] ?? 'charon' };
}

/** Root directory for peer/capture directories: $IKE_INTEROP_DIR or <tmp>/ike-interop. */
export function interopDir(): string {
  return process.env.IKE_INTEROP_DIR || path.join(os.tmpdir(), 'ike-interop');
}

/** With IKE_INTEROP_KEEP=1 logs, configs and captures are left on disk for debugging. */
export function keepArtifacts(): boolean {
  return process.env.IKE_INTEROP_KEEP === '1';
}

/** Deletes a file or directory when the process exits or is interrupted (unless IKE_INTEROP_KEEP=1). */
export function removeOnExit(p: string): void {
  if (keepArtifacts()) return;
  registerCleanup(() => rmSync(p, { recursive: true, force: true }));
}

export type ConfValue = string | number | boolean;

export interface StrongSwanOptions {
  /** connection and CHILD_SA name (default "t") */
  conn?: string;
  mode?: 'main' | 'aggressive';
  /** IKE (phase 1) proposals, strongSwan syntax, comma separated (default aes128-sha1-modp2048) */
  ike?: string;
  /** ESP proposals; a DH group means PFS (default aes128-sha1) */
  esp?: string;
  /** addresses and traffic selectors: default from the namespace side (10.99.0.x, 10.99.{1,2}.1/32) */
  local?: string;
  remote?: string;
  localId?: string;
  remoteId?: string;
  psk?: string;
  localTs?: string;
  remoteTs?: string;
  /** force UDP encapsulation of ESP (swanctl `encap`) */
  encap?: boolean;
  /** seconds; 0 disables DPD */
  dpdDelay?: number;
  dpdTimeout?: number;
  dpdAction?: 'clear' | 'trap' | 'restart' | 'none';
  /** IKE SA rekey / reauth / over time, seconds (0 disables where strongSwan allows) */
  rekeyTime?: number;
  reauthTime?: number;
  overTime?: number;
  /** CHILD_SA lifetimes: seconds, bytes, packets */
  childRekeyTime?: number;
  childLifeTime?: number;
  childRandTime?: number;
  childRekeyBytes?: number;
  childLifeBytes?: number;
  childRekeyPackets?: number;
  childLifePackets?: number;
  /** CHILD_SA mode (default tunnel) */
  childMode?: 'tunnel' | 'transport';
  /** swanctl `unique` (default no) */
  unique?: 'no' | 'never' | 'keep' | 'replace';
  /** what the connection does when loaded (default none: tests initiate explicitly) */
  startAction?: 'none' | 'trap' | 'start';
  /** libipsec: user-space ESP via TUN (UDP encapsulation only); netlink: kernel XFRM (no ESP in this kernel) */
  kernel?: 'libipsec' | 'netlink';
  retransmitTries?: number;
  /** seconds */
  retransmitTimeout?: number;
  retransmitBase?: number;
  /** accept Aggressive Mode with PSK as responder (default: true when mode is aggressive) */
  allowAggressivePsk?: boolean;
  /** log levels: ike/chd (default 4, which logs keys), net, enc, cfg, knl */
  logLevel?: number;
  netLogLevel?: number;
  encLogLevel?: number;
  cfgLogLevel?: number;
  knlLogLevel?: number;
  threads?: number;
  /** raw extra settings: in the connection, its child, local, remote, and charon { } of strongswan.conf */
  extraConn?: Record<string, ConfValue>;
  extraChild?: Record<string, ConfValue>;
  extraLocal?: Record<string, ConfValue>;
  extraRemote?: Record<string, ConfValue>;
  extraCharon?: Record<string, ConfValue>;
  /**
   * Further authentication rounds of the connection, by section name: 'local-NAME' / 'remote-NAME' (IKEv1 XAUTH
   * is a second round, e.g. { 'remote-xauth': { auth: 'xauth' } } or { 'local-xauth': { auth: 'xauth', xauth_id: 'alice' } }).
   */
  authRounds?: Record<string, Record<string, ConfValue>>;
  /** swanctl.conf `pools { NAME { addrs = ... dns = ... } }` (select one with extraConn { pools: NAME }) */
  pools?: Record<string, Record<string, ConfValue>>;
  /** further swanctl.conf secrets, by section name, e.g. { 'xauth-alice': { id: 'alice', secret: 'pw' } } */
  extraSecrets?: Record<string, Record<string, ConfValue>>;
  /** base directory (default interopDir()) */
  dir?: string;
}

export interface InitiateResult {
  ok: boolean;
  /** swanctl's output (stdout + stderr) */
  output: string;
  ms: number;
}

export interface ChildSaInfo {
  name: string;
  uniqueId: number;
  reqid?: number;
  state: string;
  mode?: string;
  protocol?: string;
  encap: boolean;
  spiIn?: string;
  spiOut?: string;
  encrAlg?: string;
  encrKeysize?: number;
  integAlg?: string;
  dhGroup?: string;
  bytesIn: number;
  packetsIn: number;
  bytesOut: number;
  packetsOut: number;
  localTs: string[];
  remoteTs: string[];
  raw: ViciSection;
}

export interface IkeSaInfo {
  name: string;
  uniqueId: number;
  version: number;
  state: string;
  localHost?: string;
  localPort?: number;
  localId?: string;
  remoteHost?: string;
  remotePort?: number;
  remoteId?: string;
  initiator: boolean;
  /** IKE SPIs = ISAKMP cookies, 16 hex */
  cookieI?: string;
  cookieR?: string;
  natRemote: boolean;
  natAny: boolean;
  encrAlg?: string;
  encrKeysize?: number;
  integAlg?: string;
  prfAlg?: string;
  dhGroup?: string;
  children: ChildSaInfo[];
  raw: ViciSection;
}

let peerCounter = 0;

export class StrongSwanPeer extends LoggedDaemon {
  readonly side: NetnsSide;
  readonly dir: string;
  readonly conn: string;
  readonly opts: Required<Pick<StrongSwanOptions, 'mode' | 'ike' | 'esp' | 'local' | 'remote' | 'localTs' | 'remoteTs' | 'psk' | 'kernel'>> &
    StrongSwanOptions;
  private child: ChildProcess | undefined;
  /** ms from spawn until vici answered and the config was loaded */
  startMs = 0;
  /** ms the last stop() took */
  stopMs = 0;

  constructor(readonly pair: NetnsPair, side: SideName, options: StrongSwanOptions = {}) {
    super();
    this.side = pair.side(side);
    const s = this.side;
    this.opts = {
      mode: 'main',
      ike: 'aes128-sha1-modp2048',
      esp: 'aes128-sha1',
      local: s.addr,
      remote: s.peerAddr,
      localTs: `${s.inner}/32`,
      remoteTs: `${s.peerInner}/32`,
      psk: 'testsecret123',
      kernel: 'libipsec',
      ...options,
    };
    this.conn = options.conn ?? 't';
    if (!/^[A-Za-z0-9_-]+$/.test(this.conn)) throw new TypeError(`bad connection name '${this.conn}'`);
    this.dir = path.join(options.dir ?? interopDir(), `${pair.id}-${s.side}-strongswan-${++peerCounter}`);
  }

  get logPath(): string {
    return path.join(this.dir, 'charon.log');
  }
  get viciUri(): string {
    return `unix://${path.join(this.dir, 'charon.vici')}`;
  }
  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The strongswan.conf this peer runs with. */
  strongswanConf(): string {
    const o = this.opts;
    const lvl = o.logLevel ?? 4;
    // kernel-libipsec must come before kernel-netlink: the first kernel interface that can install IPsec SAs wins
    const kernel = o.kernel === 'libipsec' ? 'kernel-libipsec kernel-netlink' : 'kernel-netlink';
    const aggr = o.allowAggressivePsk ?? o.mode === 'aggressive';
    const extra = Object.entries(o.extraCharon ?? {}).map(([k, v]) => `  ${k} = ${fmt(v)}`);
    return [
      `# generated by test/interop/harness/strongswan.ts for ${this.side.ns}`,
      `charon {`,
      `  load_modular = no`,
      `  load = random nonce openssl aes sha1 sha2 hmac md5 gmp pem pkcs1 x509 pubkey kdf curve25519 ${kernel} socket-default vici updown xauth-generic attr`,
      `  install_routes = ${o.kernel === 'libipsec' ? 'yes' : 'no'}`,
      `  i_dont_care_about_security_and_use_aggressive_mode_psk = ${aggr ? 'yes' : 'no'}`,
      // default 5 half-open SAs per peer IP: raised so load tests are not silently dropped
      `  block_threshold = 100000`,
      `  init_limit_half_open = 0`,
      `  threads = ${o.threads ?? 16}`,
      `  retransmit_tries = ${o.retransmitTries ?? 3}`,
      `  retransmit_timeout = ${o.retransmitTimeout ?? 2}`,
      `  retransmit_base = ${o.retransmitBase ?? 1.8}`,
      ...extra,
      `  plugins {`,
      `    vici { socket = ${this.viciUri} }`,
      `  }`,
      `  filelog {`,
      `    main {`,
      `      path = ${this.logPath}`,
      `      time_format = %T`,
      `      ike_name = yes`,
      `      append = no`,
      `      flush_line = yes`,
      `      default = 1`,
      `      ike = ${lvl}`,
      `      chd = ${lvl}`,
      `      cfg = ${o.cfgLogLevel ?? 2}`,
      `      knl = ${o.knlLogLevel ?? 2}`,
      `      net = ${o.netLogLevel ?? 1}`,
      `      enc = ${o.encLogLevel ?? 1}`,
      `    }`,
      `  }`,
      `  syslog {`,
      `    daemon { default = -1 }`,
      `    auth { default = -1 }`,
      `  }`,
      `}`,
      `swanctl {`,
      `  load = pem pkcs1 x509 pubkey random nonce openssl`,
      `}`,
      ``,
    ].join('\n');
  }

  /** The swanctl.conf this peer loads: one connection with one CHILD_SA and its PSK. */
  swanctlConf(): string {
    const o = this.opts;
    const n = this.conn;
    const lid = o.localId ?? o.local;
    const rid = o.remoteId ?? o.remote;
    const kv = (indent: string, rec: Record<string, ConfValue | undefined>) =>
      Object.entries(rec)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${indent}${k} = ${fmt(v!)}`);
    const secs = (v: number | undefined) => (v === undefined ? undefined : `${v}s`);
    const name = (what: string, k: string, re = /^[A-Za-z0-9_-]+$/) => {
      if (!re.test(k)) throw new TypeError(`bad ${what} section name '${k}'`);
      return k;
    };
    const sections = (indent: string, what: string, rec: Record<string, Record<string, ConfValue>> | undefined, re?: RegExp) =>
      Object.entries(rec ?? {}).flatMap(([k, v]) => [`${indent}${name(what, k, re)} {`, ...kv(indent + '  ', v), `${indent}}`]);
    return [
      `# generated by test/interop/harness/strongswan.ts for ${this.side.ns}`,
      `connections {`,
      `  ${n} {`,
      ...kv('    ', {
        version: 1,
        aggressive: o.mode === 'aggressive' ? 'yes' : 'no',
        local_addrs: o.local,
        remote_addrs: o.remote,
        proposals: o.ike,
        encap: o.encap ? 'yes' : 'no',
        dpd_delay: secs(o.dpdDelay ?? 0),
        dpd_timeout: secs(o.dpdTimeout),
        unique: o.unique ?? 'no',
        rekey_time: secs(o.rekeyTime),
        reauth_time: secs(o.reauthTime),
        over_time: secs(o.overTime),
        ...o.extraConn,
      }),
      `    local {`,
      ...kv('      ', { auth: 'psk', id: lid, ...o.extraLocal }),
      `    }`,
      `    remote {`,
      ...kv('      ', { auth: 'psk', id: rid, ...o.extraRemote }),
      `    }`,
      ...sections('    ', 'auth round', o.authRounds, /^(local|remote)-[A-Za-z0-9_]+$/),
      `    children {`,
      `      ${n} {`,
      ...kv('        ', {
        local_ts: o.localTs,
        remote_ts: o.remoteTs,
        esp_proposals: o.esp,
        mode: o.childMode ?? 'tunnel',
        start_action: o.startAction ?? 'none',
        dpd_action: o.dpdAction,
        rekey_time: secs(o.childRekeyTime),
        life_time: secs(o.childLifeTime),
        rand_time: secs(o.childRandTime),
        rekey_bytes: o.childRekeyBytes,
        life_bytes: o.childLifeBytes,
        rekey_packets: o.childRekeyPackets,
        life_packets: o.childLifePackets,
        ...o.extraChild,
      }),
      `      }`,
      `    }`,
      `  }`,
      `}`,
      ...(o.pools ? [`pools {`, ...sections('  ', 'pool', o.pools), `}`] : []),
      `secrets {`,
      `  ike-${n} {`,
      `    id-l = ${lid}`,
      `    id-r = ${rid}`,
      // hex form: any byte string is safe, no quoting rules to get wrong
      `    secret = 0x${Buffer.from(o.psk, 'utf8').toString('hex')}`,
      `  }`,
      ...sections('  ', 'secret', o.extraSecrets),
      `}`,
      ``,
    ].join('\n');
  }

  /** swanctl against this daemon; never rejects. */
  swanctl(args: readonly string[], timeoutMs = 30_000): Promise<RunResult> {
    return runCommand('swanctl', [...args, '--uri', this.viciUri], {
      timeoutMs,
      env: { ...process.env, STRONGSWAN_CONF: path.join(this.dir, 'strongswan.conf') },
    });
  }

  /** Writes the configuration, starts charon, waits for vici and loads the connection + PSK. */
  async start(): Promise<this> {
    if (this.child) throw new Error('already started');
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(path.join(this.dir, 'run'), { recursive: true });
    removeOnExit(this.dir);
    writeFileSync(path.join(this.dir, 'strongswan.conf'), this.strongswanConf());
    writeFileSync(path.join(this.dir, 'swanctl.conf'), this.swanctlConf(), { mode: 0o600 });
    const t0 = performance.now();
    const out = openSync(path.join(this.dir, 'charon.stderr'), 'w');
    try {
      const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
      this.child = this.pair.spawn(this.side.side, 'sh', [
        '-c',
        `mount --bind ${q(path.join(this.dir, 'run'))} /run && exec env STRONGSWAN_CONF=${q(path.join(this.dir, 'strongswan.conf'))} ${CHARON}`,
      ], { stdio: ['ignore', out, out] });
    } finally {
      closeSync(out);
    }
    try {
      await this.waitVici(10_000);
      const r = await this.swanctl(['--load-all', '--noprompt', '--file', path.join(this.dir, 'swanctl.conf')]);
      if (r.code !== 0 || !r.stdout.includes(`loaded connection '${this.conn}'`)) {
        throw new Error(`swanctl --load-all failed: ${r.stdout}${r.stderr}`);
      }
    } catch (e) {
      const tail = this.logTail(20);
      await this.stop(200);
      throw new Error(`strongSwan in ${this.side.ns} did not start: ${(e as Error).message}\n${tail}`);
    }
    this.startMs = performance.now() - t0;
    return this;
  }

  private async waitVici(timeoutMs: number): Promise<void> {
    const sock = path.join(this.dir, 'charon.vici');
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (!this.running) throw new Error(`charon exited: ${this.stderrText()}`);
      if (existsSync(sock)) {
        const r = await this.swanctl(['--stats'], 5000);
        if (r.code === 0) return;
      }
      await sleep(20);
    }
    throw new Error('vici did not answer');
  }

  /** Initiates the CHILD_SA (phase 1 first if needed); resolves when swanctl returns. */
  async initiate(child?: string, timeoutSec = 20): Promise<InitiateResult> {
    const t0 = performance.now();
    const r = await this.swanctl(['--initiate', '--child', child ?? this.conn, '--timeout', String(timeoutSec)], (timeoutSec + 5) * 1000);
    const output = r.stdout + r.stderr;
    return { ok: r.code === 0 && output.includes('initiate completed successfully'), output, ms: performance.now() - t0 };
  }

  /** Initiates only the IKE SA (phase 1, no Quick Mode). */
  async initiateIke(timeoutSec = 20): Promise<InitiateResult> {
    const t0 = performance.now();
    const r = await this.swanctl(['--initiate', '--ike', this.conn, '--timeout', String(timeoutSec)], (timeoutSec + 5) * 1000);
    const output = r.stdout + r.stderr;
    return { ok: r.code === 0 && output.includes('initiate completed successfully'), output, ms: performance.now() - t0 };
  }

  /** Deletes the IKE SA (and its CHILD_SAs): strongSwan sends the Delete notifications. */
  async terminateIke(timeoutSec = 10): Promise<InitiateResult> {
    const t0 = performance.now();
    const r = await this.swanctl(['--terminate', '--ike', this.conn, '--timeout', String(timeoutSec)], (timeoutSec + 5) * 1000);
    const output = r.stdout + r.stderr;
    return { ok: r.code === 0 && output.includes('terminate completed successfully'), output, ms: performance.now() - t0 };
  }

  /** Rekeys the CHILD_SA (a new Quick Mode) or, with `ike`, the IKE SA (a new phase 1). */
  async rekey(what: { ike?: boolean } = {}, timeoutSec = 10): Promise<InitiateResult> {
    const t0 = performance.now();
    const r = await this.swanctl(['--rekey', what.ike ? '--ike' : '--child', this.conn], (timeoutSec + 5) * 1000);
    const output = r.stdout + r.stderr;
    return { ok: r.code === 0 && output.includes('rekey completed successfully'), output, ms: performance.now() - t0 };
  }

  /** Deletes the CHILD_SA(s) of the connection only. */
  async terminateChild(timeoutSec = 10): Promise<InitiateResult> {
    const t0 = performance.now();
    const r = await this.swanctl(['--terminate', '--child', this.conn, '--timeout', String(timeoutSec)], (timeoutSec + 5) * 1000);
    const output = r.stdout + r.stderr;
    return { ok: r.code === 0 && output.includes('terminate completed successfully'), output, ms: performance.now() - t0 };
  }

  /** The IKE SAs and their CHILD_SAs as charon reports them (swanctl --list-sas). */
  async listSas(): Promise<IkeSaInfo[]> {
    const r = await this.swanctl(['--list-sas', '--pretty'], 10_000);
    if (r.code !== 0) throw new Error(`swanctl --list-sas failed: ${r.stderr || r.error}`);
    return toIkeSas(parseViciPretty(r.stdout));
  }

  private stderrText(): string {
    try {
      return readFileSync(path.join(this.dir, 'charon.stderr'), 'utf8').trim();
    } catch {
      return '';
    }
  }

  /**
   * Keys of every IKE SA and CHILD_SA in the log. Cookies come from the logged NAT-D input; when the
   * log lacks them (no NAT-T) and charon still runs, they are taken from --list-sas by unique id.
   */
  async keys(): Promise<CharonIkeKeys[]> {
    const keys = parseCharonKeys(this.log());
    if (keys.some((k) => !k.cookieI) && this.running) {
      const sas = await this.listSas().catch(() => [] as IkeSaInfo[]);
      for (const k of keys) {
        const sa = sas.find((s) => s.uniqueId === k.uniqueId);
        if (sa && !k.cookieI) {
          k.cookieI = sa.cookieI;
          k.cookieR = sa.cookieR;
        }
      }
    }
    return keys;
  }

  /**
   * Stops charon: SIGTERM (it then sends Deletes for its SAs), SIGKILL if it is still running after
   * `graceMs`. charon 5.9.8 takes about 1.4-2 s to exit on SIGTERM here; pass a small graceMs when
   * the Deletes do not matter.
   */
  async stop(graceMs = 2500): Promise<void> {
    if (!this.child) return;
    this.stopMs = await stopChild(this.child, 'SIGTERM', graceMs);
  }
}

function fmt(v: ConfValue): string {
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

const num = (v: unknown): number | undefined => (typeof v === 'string' && v !== '' && !isNaN(Number(v)) ? Number(v) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []);

/** Turns the `list-sa event` sections of `swanctl --list-sas --pretty` into typed objects. */
export function toIkeSas(events: { name: string; body: ViciSection }[]): IkeSaInfo[] {
  const out: IkeSaInfo[] = [];
  for (const ev of events) {
    if (ev.name !== 'list-sa event') continue;
    for (const [name, v] of Object.entries(ev.body)) {
      if (typeof v !== 'object' || Array.isArray(v)) continue;
      const s = v as ViciSection;
      const children: ChildSaInfo[] = [];
      const cs = s['child-sas'];
      if (cs && typeof cs === 'object' && !Array.isArray(cs)) {
        for (const cv of Object.values(cs)) {
          if (typeof cv !== 'object' || Array.isArray(cv)) continue;
          const c = cv as ViciSection;
          children.push({
            name: str(c.name) ?? '',
            uniqueId: num(c.uniqueid) ?? 0,
            reqid: num(c.reqid),
            state: str(c.state) ?? '',
            mode: str(c.mode),
            protocol: str(c.protocol),
            encap: c.encap === 'yes',
            spiIn: str(c['spi-in']),
            spiOut: str(c['spi-out']),
            encrAlg: str(c['encr-alg']),
            encrKeysize: num(c['encr-keysize']),
            integAlg: str(c['integ-alg']),
            dhGroup: str(c['dh-group']),
            bytesIn: num(c['bytes-in']) ?? 0,
            packetsIn: num(c['packets-in']) ?? 0,
            bytesOut: num(c['bytes-out']) ?? 0,
            packetsOut: num(c['packets-out']) ?? 0,
            localTs: list(c['local-ts']),
            remoteTs: list(c['remote-ts']),
            raw: c,
          });
        }
      }
      out.push({
        name,
        uniqueId: num(s.uniqueid) ?? 0,
        version: num(s.version) ?? 0,
        state: str(s.state) ?? '',
        localHost: str(s['local-host']),
        localPort: num(s['local-port']),
        localId: str(s['local-id']),
        remoteHost: str(s['remote-host']),
        remotePort: num(s['remote-port']),
        remoteId: str(s['remote-id']),
        initiator: s.initiator === 'yes',
        cookieI: str(s['initiator-spi']),
        cookieR: str(s['responder-spi']),
        natRemote: s['nat-remote'] === 'yes',
        natAny: s['nat-any'] === 'yes',
        encrAlg: str(s['encr-alg']),
        encrKeysize: num(s['encr-keysize']),
        integAlg: str(s['integ-alg']),
        prfAlg: str(s['prf-alg']),
        dhGroup: str(s['dh-group']),
        children,
        raw: s,
      });
    }
  }
  return out;
}
