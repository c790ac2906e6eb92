// Two network namespaces joined by a veth pair, made fresh for one test run and deleted after it.
//
//   <prefix>-<pid>-<n>-a   veth ...a  10.99.0.1/24, inner (tunnel) address 10.99.1.1/32 on lo
//   <prefix>-<pid>-<n>-b   veth ...b  10.99.0.2/24, inner (tunnel) address 10.99.2.1/32 on lo
//
// There is no default route in either namespace, so nothing a test sends can leave them. Names are
// unique per process and per pair, so parallel runs (other helpers, CI jobs) cannot collide, and
// destroy() only ever touches the namespaces and processes this object created.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { runCommand, isAlive, sleep, stopChild, registerCleanup, type RunOptions, type RunResult } from './proc.js';

export type SideName = 'a' | 'b';

export interface NetnsSide {
  side: SideName;
  /** the namespace name (as in `ip netns list`) */
  ns: string;
  /** the veth end inside this namespace */
  veth: string;
  /** address on the veth, without prefix length: 10.99.0.1 (a) or 10.99.0.2 (b) */
  addr: string;
  /** inner (tunnel) address on lo: 10.99.1.1 (a) or 10.99.2.1 (b) */
  inner: string;
  peerAddr: string;
  peerInner: string;
}

export interface Availability {
  ok: boolean;
  why: string;
}

let probed: Availability | undefined;

/**
 * Can this machine create network namespaces? Needs Linux, root, iproute2, and the right to
 * create one (a root user in an unprivileged container may lack CAP_SYS_ADMIN): the first call
 * creates and deletes a probe namespace (~10 ms); the answer is cached.
 */
export function netnsAvailable(): Availability {
  if (probed) return probed;
  probed = probeNetns();
  return probed;
}

function probeNetns(): Availability {
  if (process.platform !== 'linux') return { ok: false, why: `network namespaces need Linux (this is ${process.platform})` };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return { ok: false, why: 'not root: creating network namespaces needs root (CI runs as root)' };
  }
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 5000 });
  if (r.error) return { ok: false, why: `iproute2 'ip' not usable: ${r.error.message} (scripts/install-interop-deps.sh)` };
  if (r.status !== 0) return { ok: false, why: `'ip netns list' failed: ${(r.stderr || '').trim()}` };
  if (!existsSync('/proc/self/ns/net')) return { ok: false, why: 'kernel without network namespace support' };
  const name = `ikeprobe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8', timeout: 5000 });
  spawnSync('ip', ['netns', 'del', name], { encoding: 'utf8', timeout: 5000 });
  if (add.status !== 0) return { ok: false, why: `cannot create a network namespace: ${(add.stderr || '').trim()}` };
  return { ok: true, why: 'root and ip netns available' };
}

/**
 * The reason to skip an interop test, or false to run it. With IKE_INTEROP_REQUIRED=1 (set by
 * .ci/run) nothing is skipped: a missing prerequisite must fail the run, not hide it.
 */
let pingCache: Availability | undefined;
/** Is `ping` (iputils-ping) installed? The data-plane and tunnel tests send it through their tunnels. */
export function pingAvailable(): Availability {
  if (pingCache) return pingCache;
  const r = spawnSync('ping', ['-V'], { encoding: 'utf8', timeout: 5000 });
  pingCache = r.error || r.status !== 0 ? { ok: false, why: 'ping is not installed (Debian: iputils-ping; scripts/install-interop-deps.sh installs it)' } : { ok: true, why: '' };
  return pingCache;
}

export function interopSkipReason(...checks: Availability[]): string | false {
  const missing = checks.find((c) => !c.ok);
  if (!missing) return false;
  if (process.env.IKE_INTEROP_REQUIRED === '1') return false;
  return missing.why;
}

let pairCounter = 0;

export interface NetnsPairOptions {
  /** namespace name prefix (default "ike"); the names become <prefix>-<pid>-<n>-a/b */
  prefix?: string;
}

export class NetnsPair {
  readonly id: string;
  readonly a: NetnsSide;
  readonly b: NetnsSide;
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;
  private created = false;
  private unregister: (() => void) | undefined;

  private constructor(prefix: string) {
    const n = ++pairCounter;
    this.id = `${prefix}-${process.pid}-${n}`;
    // interface names are limited to 15 characters (IFNAMSIZ - 1): "iv" + pid(base 36) + n(base 36) + "a"
    const tag = `${process.pid.toString(36)}x${n.toString(36)}`.slice(-11);
    this.a = {
      side: 'a', ns: `${this.id}-a`, veth: `iv${tag}a`,
      addr: '10.99.0.1', inner: '10.99.1.1', peerAddr: '10.99.0.2', peerInner: '10.99.2.1',
    };
    this.b = {
      side: 'b', ns: `${this.id}-b`, veth: `iv${tag}b`,
      addr: '10.99.0.2', inner: '10.99.2.1', peerAddr: '10.99.0.1', peerInner: '10.99.1.1',
    };
  }

  /** Creates the namespaces, the veth pair and the addresses; cleans up after itself if a step fails. */
  static async create(opts: NetnsPairOptions = {}): Promise<NetnsPair> {
    const prefix = opts.prefix ?? 'ike';
    if (!/^[a-z][a-z0-9]{0,15}$/.test(prefix)) throw new TypeError(`bad namespace prefix '${prefix}'`);
    const p = new NetnsPair(prefix);
    // 'exit' and signal handlers must be synchronous: destroySync (SIGKILL + spawnSync) does it there
    p.unregister = registerCleanup(() => p.destroySync());
    try {
      await p.setUp();
    } catch (e) {
      await p.destroy();
      throw e;
    }
    return p;
  }

  private async ip(args: string[]): Promise<void> {
    const r = await runCommand('ip', args, { timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed: ${(r.stderr || r.error || '').trim()}`);
  }

  private async setUp(): Promise<void> {
    const { a, b } = this;
    this.created = true;
    await Promise.all([this.ip(['netns', 'add', a.ns]), this.ip(['netns', 'add', b.ns])]);
    // both ends are created straight inside the namespaces: nothing appears in the root namespace
    await this.ip(['link', 'add', a.veth, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.veth, 'netns', b.ns]);
    await Promise.all(
      [a, b].map(async (s) => {
        // -batch: one ip process per namespace instead of five
        const batch = [
          `link set lo up`,
          `addr add ${s.addr}/24 dev ${s.veth}`,
          `addr add ${s.inner}/32 dev lo`,
          `link set ${s.veth} up`,
        ].join('\n');
        const r = await runCommand('ip', ['-n', s.ns, '-batch', '-'], { input: batch + '\n', timeoutMs: 10_000 });
        if (r.code !== 0) throw new Error(`configuring ${s.ns} failed: ${r.stderr.trim()}`);
      }),
    );
    // The kernel reports the veth's operational state UP (IFF_RUNNING) only after its link-watch
    // work ran, up to ~1 s later. Until then charon and libuv (os.networkInterfaces) ignore the
    // interface, although packets already pass: wait for "state UP" on both ends, then a ping.
    const deadline = performance.now() + 5000;
    while (performance.now() < deadline) {
      const st = await Promise.all([a, b].map((s) => runCommand('ip', ['-n', s.ns, '-o', 'link', 'show', s.veth], { timeoutMs: 3000 })));
      if (st.every((r) => / state UP /.test(r.stdout))) {
        const r = await this.run('a', 'ping', ['-c1', '-W1', '-q', b.addr], { timeoutMs: 3000 });
        if (r.code === 0) return;
      }
      await sleep(20);
    }
    throw new Error(`veth ${a.veth} <-> ${b.veth} did not come up`);
  }

  /** Resolves a side name or one of this pair's namespace names; refuses any other namespace. */
  side(ns: SideName | string): NetnsSide {
    if (ns === 'a' || ns === this.a.ns) return this.a;
    if (ns === 'b' || ns === this.b.ns) return this.b;
    throw new RangeError(`'${ns}' is not a namespace of pair ${this.id}`);
  }

  /** Runs a command inside the namespace to completion (never rejects; look at `code`). */
  run(ns: SideName | string, cmd: string, args: readonly string[] = [], opts: RunOptions = {}): Promise<RunResult> {
    if (this.destroyed) throw new Error(`pair ${this.id} is destroyed`);
    return runCommand('ip', ['netns', 'exec', this.side(ns).ns, cmd, ...args], opts);
  }

  /**
   * Starts a long-running command inside the namespace and tracks it: destroy() kills it by PID.
   * `ip netns exec` execs the command, so the returned child's PID is the command's own PID.
   */
  spawn(ns: SideName | string, cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): ChildProcess {
    if (this.destroyed) throw new Error(`pair ${this.id} is destroyed`);
    const child = spawn('ip', ['netns', 'exec', this.side(ns).ns, cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // own session and process group (like setsid): a Ctrl-C meant for the test does not reach it first
      detached: true,
      ...opts,
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    // a detached child must not keep the test process alive
    child.unref();
    return child;
  }

  /**
   * Runs Node.js inside the namespace (`nodeArgs`: [script, ...args] or ['-e', code]) (the process itself cannot enter one: Node has no
   * setns). With `ipc: true` the child gets an IPC channel (process.send / 'message'), which passes
   * through `ip netns exec` unchanged; the caller should child.disconnect() when done.
   */
  spawnNode(ns: SideName | string, nodeArgs: readonly string[], opts: { ipc?: boolean; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    return this.spawn(ns, process.execPath, nodeArgs, {
      stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
  }

  /** ping from one side to an address, from an optional source address; resolves true on success. */
  async ping(from: SideName, dst: string, opts: { src?: string; count?: number; timeoutSec?: number } = {}): Promise<RunResult> {
    const ping = pingAvailable();
    if (!ping.ok) throw new Error(ping.why); // one clear line instead of a failed ping that looks like a broken tunnel
    const args = ['-n', '-q', '-c', String(opts.count ?? 1), '-W', String(opts.timeoutSec ?? 1), '-i', '0.2'];
    if (opts.src) args.push('-I', opts.src);
    args.push(dst);
    return this.run(from, 'ping', args, { timeoutMs: ((opts.timeoutSec ?? 1) + 1) * 1000 * (opts.count ?? 1) + 2000 });
  }

  /** PIDs of the processes this pair started and that are still running. */
  pids(): number[] {
    return [...this.children].map((c) => c.pid).filter((p): p is number => p !== undefined && isAlive(p));
  }

  /** Names of the namespaces that still exist (empty after destroy()). */
  static listNamespaces(): string[] {
    const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    return (r.stdout || '').split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
  }

  exists(): boolean {
    const names = NetnsPair.listNamespaces();
    return names.includes(this.a.ns) || names.includes(this.b.ns);
  }

  /**
   * Kills the processes this pair started (SIGTERM, then SIGKILL after a short grace) and deletes
   * both namespaces (the veth pair goes with them). Idempotent.
   */
  async destroy(graceMs = 1000): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all([...this.children].map((c) => stopChild(c, 'SIGTERM', graceMs)));
    this.finish();
  }

  /** Synchronous variant for process 'exit' / signal handlers: SIGKILL, no grace. */
  destroySync(): void {
    if (this.destroyed && !this.unregister) return;
    this.destroyed = true;
    for (const c of this.children) {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    this.finish();
  }

  private finish(): void {
    if (this.created) {
      for (const s of [this.a, this.b]) {
        // Whatever still runs in our namespace was started by our commands (e.g. a shell's child):
        // only processes in a namespace this object created can be listed here.
        const r = spawnSync('ip', ['netns', 'pids', s.ns], { encoding: 'utf8' });
        for (const line of (r.stdout || '').split('\n')) {
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
    }
    this.unregister?.();
    this.unregister = undefined;
  }
}
