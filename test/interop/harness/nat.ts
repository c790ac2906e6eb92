// Three network namespaces with a NAT router in the middle, made fresh for one test run and deleted after it.
//
//   <prefix>-<pid>-<n>-a  veth 10.99.10.2/24, route to 10.99.20.0/24 via N; inner 10.99.11.1/32 on lo
//   <prefix>-<pid>-<n>-n  10.99.10.1/24 (to A), 10.99.20.1/24 (to B); ip_forward=1 and
//                         iptables -t nat POSTROUTING -o <to B> MASQUERADE (UDP source ports mapped at
//                         random into 41000-41999, so the NAT changes ports as well as the address, as a
//                         busy home router does, and a new mapping gets a new port)
//   <prefix>-<pid>-<n>-b  veth 10.99.20.2/24; inner 10.99.21.1/32 on lo; no route back to 10.99.10.0/24:
//                         B sees only N's address
//
// The addresses stay clear of NetnsPair's 10.99.0-2.x. Nothing has a default route, so nothing leaves.
// destroy() kills the processes this object started (by PID) and deletes its three namespaces (veths and
// iptables rules go with them); it is also registered for process exit and signals.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { runCommand, stopChild, registerCleanup, sleep, type RunOptions, type RunResult } from './proc.js';
import type { Availability } from './netns.js';

export type NatSideName = 'a' | 'n' | 'b';

export interface NatSide {
  ns: string;
  /** address on the veth toward the router (the router's side: toward A) */
  addr: string;
  /** inner (tunnel) address on lo (none for the router) */
  inner: string;
}

let iptablesCmd: string | undefined;

/** Is there an iptables (nft or legacy) to set up the MASQUERADE rule? Debian package `iptables`. */
export function iptablesAvailable(): Availability {
  for (const cmd of ['iptables', 'iptables-nft', 'iptables-legacy']) {
    const r = spawnSync(cmd, ['--version'], { encoding: 'utf8', timeout: 5000 });
    if (!r.error && r.status === 0) {
      iptablesCmd = cmd;
      return { ok: true, why: r.stdout.trim() };
    }
  }
  return { ok: false, why: "no iptables: the NAT test needs it (Debian package 'iptables', scripts/install-interop-deps.sh)" };
}

let counter = 0;

export class NatTopology {
  readonly id: string;
  readonly a: NatSide;
  readonly n: NatSide;
  readonly b: NatSide;
  /** N's address toward B: where B sees A's packets come from. */
  readonly publicAddr = '10.99.20.1';
  readonly portRange = '41000-41999';
  /** veth names: an (A, toward N), na (N, toward A), nb (N, toward B), bn (B, toward N). */
  readonly veths: { an: string; na: string; nb: string; bn: string };
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;
  private unregister: (() => void) | undefined;

  private constructor(prefix: string) {
    const n = ++counter;
    this.id = `${prefix}-${process.pid}-${n}`;
    this.a = { ns: `${this.id}-a`, addr: '10.99.10.2', inner: '10.99.11.1' };
    this.n = { ns: `${this.id}-n`, addr: '10.99.10.1', inner: '' };
    this.b = { ns: `${this.id}-b`, addr: '10.99.20.2', inner: '10.99.21.1' };
    // IFNAMSIZ: at most 15 characters
    const tag = `${process.pid.toString(36)}x${n.toString(36)}`.slice(-10);
    this.veths = { an: `nt${tag}an`, na: `nt${tag}na`, nb: `nt${tag}nb`, bn: `nt${tag}bn` };
  }

  static async create(opts: { prefix?: string } = {}): Promise<NatTopology> {
    const prefix = opts.prefix ?? 'iknat';
    if (!/^[a-z][a-z0-9]{0,15}$/.test(prefix)) throw new TypeError(`bad namespace prefix '${prefix}'`);
    if (!iptablesCmd && !iptablesAvailable().ok) throw new Error(iptablesAvailable().why);
    const t = new NatTopology(prefix);
    t.unregister = registerCleanup(() => t.finish());
    try {
      await t.setUp();
    } catch (e) {
      await t.destroy();
      throw e;
    }
    return t;
  }

  private async batch(ns: string, lines: string[]): Promise<void> {
    const r = await runCommand('ip', ['-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n', timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`configuring ${ns} failed: ${r.stderr.trim()}`);
  }

  private async must(ns: NatSideName, cmd: string, args: string[]): Promise<void> {
    const r = await this.run(ns, cmd, args, { timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${this.side(ns).ns} failed: ${(r.stderr || r.error || '').trim()}`);
  }

  private async setUp(): Promise<void> {
    const { a, n, b, veths: v } = this;
    for (const s of [a, n, b]) {
      const r = await runCommand('ip', ['netns', 'add', s.ns], { timeoutMs: 10_000 });
      if (r.code !== 0) throw new Error(`ip netns add ${s.ns} failed: ${r.stderr.trim()}`);
    }
    const link = async (x: string, xns: string, y: string, yns: string) => {
      const r = await runCommand('ip', ['link', 'add', x, 'netns', xns, 'type', 'veth', 'peer', 'name', y, 'netns', yns], { timeoutMs: 10_000 });
      if (r.code !== 0) throw new Error(`veth ${x} <-> ${y} failed: ${r.stderr.trim()}`);
    };
    await link(v.an, a.ns, v.na, n.ns);
    await link(v.nb, n.ns, v.bn, b.ns);
    await Promise.all([
      this.batch(a.ns, ['link set lo up', `addr add ${a.addr}/24 dev ${v.an}`, `addr add ${a.inner}/32 dev lo`, `link set ${v.an} up`, `route add 10.99.20.0/24 via ${n.addr}`]),
      this.batch(n.ns, ['link set lo up', `addr add ${n.addr}/24 dev ${v.na}`, `addr add ${this.publicAddr}/24 dev ${v.nb}`, `link set ${v.na} up`, `link set ${v.nb} up`]),
      this.batch(b.ns, ['link set lo up', `addr add ${b.addr}/24 dev ${v.bn}`, `addr add ${b.inner}/32 dev lo`, `link set ${v.bn} up`]),
    ]);
    await this.must('n', 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
    const ipt = iptablesCmd!;
    await this.must('n', ipt, ['-t', 'nat', '-A', 'POSTROUTING', '-o', v.nb, '-p', 'udp', '-j', 'MASQUERADE', '--to-ports', this.portRange, '--random-fully']);
    await this.must('n', ipt, ['-t', 'nat', '-A', 'POSTROUTING', '-o', v.nb, '-j', 'MASQUERADE']);
    // veths report operational state UP a moment after `link set up` (see NetnsPair): wait until A reaches B
    const deadline = performance.now() + 5000;
    while (performance.now() < deadline) {
      const r = await this.run('a', 'ping', ['-c1', '-W1', '-q', b.addr], { timeoutMs: 3000 });
      if (r.code === 0) return;
      await sleep(50);
    }
    throw new Error(`${a.ns} cannot reach ${b.addr} through the router ${n.ns}`);
  }

  side(s: NatSideName | string): NatSide {
    if (s === 'a' || s === this.a.ns) return this.a;
    if (s === 'n' || s === this.n.ns) return this.n;
    if (s === 'b' || s === this.b.ns) return this.b;
    throw new RangeError(`'${s}' is not a namespace of NAT topology ${this.id}`);
  }

  run(s: NatSideName | string, cmd: string, args: readonly string[] = [], opts: RunOptions = {}): Promise<RunResult> {
    if (this.destroyed) throw new Error(`NAT topology ${this.id} is destroyed`);
    return runCommand('ip', ['netns', 'exec', this.side(s).ns, cmd, ...args], opts);
  }

  /** A long-running command in a namespace, tracked by PID for destroy() (as NetnsPair.spawn). */
  spawn(s: NatSideName | string, cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): ChildProcess {
    if (this.destroyed) throw new Error(`NAT topology ${this.id} is destroyed`);
    const child = spawn('ip', ['netns', 'exec', this.side(s).ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...opts });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.unref();
    return child;
  }

  /** Node.js in a namespace: the same signature as NetnsPair.spawnNode, so OurGateway runs here too. */
  spawnNode(s: NatSideName | string, nodeArgs: readonly string[], opts: { env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    return this.spawn(s, process.execPath, nodeArgs, { env: opts.env ?? process.env });
  }

  ping(from: NatSideName, dst: string, opts: { src?: string; count?: number } = {}): Promise<RunResult> {
    const count = opts.count ?? 1;
    const args = ['-n', '-q', '-c', String(count), '-W', '1', '-i', '0.2', ...(opts.src ? ['-I', opts.src] : []), dst];
    return this.run(from, 'ping', args, { timeoutMs: 2000 * count + 2000 });
  }

  /**
   * How long the router keeps an idle UDP mapping (conntrack's udp_timeout and udp_timeout_stream, per
   * namespace; kernel defaults 30 s / 120 s). A short one makes the NAT mapping move, as a real NAT's does.
   */
  async setUdpTimeout(seconds: number): Promise<void> {
    for (const f of ['nf_conntrack_udp_timeout', 'nf_conntrack_udp_timeout_stream']) {
      await this.must('n', 'sh', ['-c', `echo ${Math.trunc(seconds)} > /proc/sys/net/netfilter/${f}`]);
    }
  }

  /** The router's NAT rules with their packet counters (for failure messages). */
  async natRules(): Promise<string> {
    const r = await this.run('n', iptablesCmd!, ['-t', 'nat', '-L', 'POSTROUTING', '-n', '-v']);
    return r.stdout + r.stderr;
  }

  static listNamespaces(): string[] {
    const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    return (r.stdout || '').split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
  }

  exists(): boolean {
    const names = NatTopology.listNamespaces();
    return [this.a, this.n, this.b].some((s) => names.includes(s.ns));
  }

  /** Stops our processes (SIGTERM, then SIGKILL), deletes the three namespaces. Idempotent. */
  async destroy(graceMs = 1000): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all([...this.children].map((c) => stopChild(c, 'SIGTERM', graceMs)));
    this.finish();
  }

  private finish(): void {
    this.destroyed = true;
    for (const s of [this.a, this.n, this.b]) {
      // whatever still runs in a namespace this object created was started by it: kill by PID
      const pids = spawnSync('ip', ['netns', 'pids', s.ns], { encoding: 'utf8' }).stdout ?? '';
      for (const line of pids.split('\n')) {
        const pid = Number(line.trim());
        if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
      spawnSync('ip', ['netns', 'del', s.ns], { encoding: 'utf8' });
    }
    this.unregister?.();
    this.unregister = undefined;
  }
}
