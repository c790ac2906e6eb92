// Our gateway as a real process inside a test namespace: `ike gateway --config FILE --json`, exactly the
// entry point a user runs, with its one-JSON-object-per-line events collected for the test to wait on.
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import type { RunResult } from './harness/index.js';
/** Where the gateway process runs: a NetnsPair or a NatTopology (anything that starts Node in a namespace). */
export interface GatewayHost {
  spawnNode(ns: string, nodeArgs: readonly string[]): ChildProcess;
}

const IKE_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');

export interface OurEvent {
  event: string;
  [k: string]: unknown;
}

export class OurGateway {
  readonly events: OurEvent[] = [];
  readonly dir: string;
  private child: ChildProcess | null = null;
  private stderr = '';
  private waiters: (() => void)[] = [];

  constructor(private readonly pair: GatewayHost, private readonly side: string, private readonly config: object) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'ike-ours-'));
  }

  /** Its control socket (`ike status --control` / `ike keylog --control`), private to this test gateway. */
  get controlPath(): string {
    return path.join(this.dir, 'control.sock');
  }

  get keylogDir(): string {
    return path.join(this.dir, 'keys');
  }

  async start(): Promise<this> {
    const file = path.join(this.dir, 'gateway.json');
    writeFileSync(file, JSON.stringify(this.config, null, 2), { mode: 0o600 });
    const child = this.pair.spawnNode(this.side, [IKE_BIN, 'gateway', '--config', file, '--json', '--keylog', this.keylogDir, '--control', this.controlPath]);
    this.child = child;
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.events.push(JSON.parse(line) as OurEvent);
        } catch {
          this.events.push({ event: 'unparsed', line });
        }
        for (const w of this.waiters.splice(0)) w();
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    child.on('exit', () => this.waiters.splice(0).forEach((w) => w()));
    await this.waitFor((e) => e.event === 'listening', 10_000);
    return this;
  }

  /** The first event matching, waiting up to timeoutMs; throws with everything seen so far. */
  async waitFor(pred: (e: OurEvent) => boolean, timeoutMs: number): Promise<OurEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit) return hit;
      if (Date.now() >= deadline || (this.child && this.child.exitCode !== null)) {
        throw new Error(`our gateway: no matching event in ${timeoutMs} ms; events:\n${this.events.map((e) => JSON.stringify(e)).join('\n')}\nstderr: ${this.stderr}`);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(200, Math.max(1, deadline - Date.now())));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Lines of one of Wireshark's key tables our gateway wrote. */
  keylog(table: 'ikev1_decryption_table' | 'esp_sa' = 'ikev1_decryption_table'): string[] {
    const f = path.join(this.keylogDir, table);
    return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean) : [];
  }

  get stderrText(): string {
    return this.stderr;
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    c.kill('SIGTERM');
    await new Promise<void>((r) => {
      const t = setTimeout(() => {
        c.kill('SIGKILL');
        r();
      }, 3000);
      c.once('exit', () => {
        clearTimeout(t);
        r();
      });
    });
  }
}

/**
 * A ping through a tunnel from one side of a pair, `src` -> `dst`; one more try when the first fails (the far
 * side's SA may be installed a moment after ours). Throws with ping's output.
 */
export async function pingThrough<S extends string>(host: Pinger<S>, from: S, dst: string, src?: string, more = ''): Promise<void> {
  let r = await host.ping(from, dst, { src, count: 3 });
  if (r.code !== 0) r = await host.ping(from, dst, { src, count: 3 });
  if (r.code !== 0) throw new Error(`ping ${src ?? '(the route\'s source)'} -> ${dst} failed: ${r.stdout}${r.stderr}${more}`);
}

/** A NetnsPair or a NatTopology: pings from one of its namespaces. */
export interface Pinger<S extends string> {
  ping(from: S, dst: string, opts: { src?: string; count?: number }): Promise<RunResult>;
}

/**
 * Starts `b` (the responder) and then `a`, and waits on each for its first `event` or error: both must show
 * the event, which is returned as [a's, b's].
 */
export async function startBoth(a: OurGateway, b: OurGateway, event = 'child-up', timeoutMs = 20_000): Promise<[OurEvent, OurEvent]> {
  await b.start();
  await a.start();
  const got: OurEvent[] = [];
  for (const g of [a, b]) {
    const e = await g.waitFor((x) => x.event === event || x.event === 'error', timeoutMs);
    if (e.event !== event) throw new Error(`expected ${event}, got ${JSON.stringify(e)}`);
    got.push(e);
  }
  return [got[0]!, got[1]!];
}

/** Where `ourPairConfig` runs: a side of a NetnsPair. */
interface PairSide {
  addr: string;
  peerAddr: string;
  inner: string;
  peerInner: string;
}

/**
 * The config of one of our gateways in a NetnsPair with the TUN data plane: connection `s` to the other
 * side, a tunnel between the inner addresses (unless `over` says otherwise; `type: 'transport'` drops the
 * selectors), side a initiates. `over` is merged into the connection.
 */
export function ourPairConfig(me: PairSide, side: 'a' | 'b', psk: string, over: Record<string, unknown> = {}): object {
  const transport = over.type === 'transport';
  return {
    listen: { address: me.addr, port: 500, nattPort: 4500 },
    dataplane: { tun: 'ike0' },
    connections: {
      s: {
        remote: me.peerAddr,
        auth: { psk },
        ike: ['aes128-sha256-modp2048'],
        esp: ['aes128gcm16'],
        ...(transport ? {} : { localTs: `${me.inner}/32`, remoteTs: `${me.peerInner}/32` }),
        initiate: side === 'a',
        retransmit: { tries: 3, timeout: '1s', factor: 1.5 },
        ...over,
      },
    },
  };
}
