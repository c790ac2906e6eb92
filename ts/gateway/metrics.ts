// Prometheus metrics of a gateway (prom-client): what an operator graphs and alerts on. GatewayMetrics keeps
// its own registry (an embedder may merge it into theirs); MetricsServer serves it over HTTP for
// `ike gateway` with "metrics": { "listen": ... }. Counters follow the gateway's events; gauges are read from
// its status when scraped, so a scrape costs nothing between scrapes. No key material, no identities: labels
// are connection names, roles, error kinds and coarse reasons.
import http from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EventEmitter } from 'node:events';
import type { Gateway, GatewayEvents } from './gateway.js';

/** Coarse classes of a down reason (free text in the events), so that a label has few values. */
export function reasonClass(reason: string): string {
  const r = reason.toLowerCase();
  if (r.includes('dpd') || r.includes('dead peer')) return 'dpd';
  if (r.includes('lifetime') || r.includes('expired')) return 'expired';
  if (r.includes('rekey') || r.includes('replaced')) return 'replaced';
  if (r.includes('peer')) return 'deleted_by_peer';
  if (r.includes('stopped')) return 'stopped';
  if (r.includes('configuration') || r.includes('operator') || r.includes('locally')) return 'local';
  return 'other';
}

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly detach: Array<() => void> = [];

  constructor(gateway: Gateway, options: { prefix?: string } = {}) {
    const p = options.prefix ?? 'ike_';
    const registers = [this.registry];
    const phase1Setups = new Counter({ name: `${p}phase1_setups_total`, help: 'ISAKMP SAs established', labelNames: ['connection', 'role', 'mode'], registers });
    const childSetups = new Counter({ name: `${p}child_setups_total`, help: 'Child (IPsec) SAs established, rekeys included', labelNames: ['connection', 'role'], registers });
    const rekeys = new Counter({ name: `${p}rekeys_total`, help: 'Rekeys: child SAs that replaced one, ISAKMP SAs replaced by a newer one', labelNames: ['connection', 'sa'], registers });
    const failures = new Counter({ name: `${p}failures_total`, help: 'Failed exchanges and refused messages, by error kind', labelNames: ['kind'], registers });
    const downs = new Counter({ name: `${p}sa_down_total`, help: 'SAs that ended, by type and coarse reason (dpd, expired, replaced, deleted_by_peer, local, stopped, other)', labelNames: ['sa', 'reason'], registers });
    const setupTime = new Histogram({
      name: `${p}phase1_setup_seconds`,
      help: 'Time from the first message of a phase 1 exchange to the ISAKMP SA',
      labelNames: ['role'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    new Gauge({
      name: `${p}sas`,
      help: 'Current SAs by state: half_open and established ISAKMP SAs, child SAs',
      labelNames: ['state'],
      registers,
      collect() {
        const s = gateway.stats();
        this.set({ state: 'half_open' }, s.halfOpen);
        this.set({ state: 'established' }, s.phase1);
        this.set({ state: 'child' }, s.children);
      },
    });
    const childTraffic = (what: 'packets' | 'bytes') =>
      new Gauge({
        name: `${p}child_sa_${what}`,
        help: `ESP ${what} of each current child SA (payload octets for bytes), by direction`,
        labelNames: ['connection', 'spi', 'direction'],
        registers,
        collect() {
          this.reset(); // SAs that are gone leave no series behind
          for (const sa of gateway.status().sas) {
            for (const c of sa.children) {
              this.set({ connection: sa.connection, spi: c.spiIn, direction: 'in' }, c.in[what]);
              this.set({ connection: sa.connection, spi: c.spiOut, direction: 'out' }, c.out[what]);
            }
          }
        },
      });
    childTraffic('packets');
    childTraffic('bytes');
    dataPlaneGauges(gateway, p, registers);
    this.on(gateway, 'phase1-up', (e) => {
      const role = e.initiator ? 'initiator' : 'responder';
      phase1Setups.inc({ connection: e.connection, role, mode: e.mode });
      setupTime.observe({ role }, e.setupMs / 1000);
    });
    this.on(gateway, 'child-up', (e) => {
      childSetups.inc({ connection: e.connection, role: e.initiator ? 'initiator' : 'responder' });
      if (e.rekey) rekeys.inc({ connection: e.connection, sa: 'child' });
    });
    this.on(gateway, 'phase1-down', (e) => {
      const reason = reasonClass(e.reason);
      downs.inc({ sa: 'isakmp', reason });
      if (reason === 'replaced') rekeys.inc({ connection: e.connection, sa: 'isakmp' });
    });
    this.on(gateway, 'child-down', (e) => downs.inc({ sa: 'child', reason: reasonClass(e.reason) }));
    this.on(gateway, 'error', (e) => failures.inc({ kind: e.kind }));
  }

  /** The text a scrape gets (Prometheus exposition format). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /** Stops following the gateway's events. */
  close(): void {
    for (const off of this.detach.splice(0)) off();
  }

  private on<K extends keyof GatewayEvents>(gateway: Gateway, event: K, f: (...args: GatewayEvents[K]) => void): void {
    const g = gateway as EventEmitter<GatewayEvents>;
    g.on(event, f as never);
    this.detach.push(() => g.off(event, f as never));
  }
}

/** GET /metrics over HTTP; anything else is 404. */
export class MetricsServer {
  private constructor(
    private readonly server: http.Server,
    private readonly metrics: GatewayMetrics,
    readonly address: { address: string; port: number },
  ) {}

  static async listen(gateway: Gateway, at: { address: string; port: number }): Promise<MetricsServer> {
    const metrics = new GatewayMetrics(gateway);
    const server = http.createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
        return;
      }
      metrics.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${e.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`metrics: cannot listen on ${at.address}:${at.port}: ${e.code ?? e.message}`)));
      server.listen(at.port, at.address, () => resolve());
    });
    const a = server.address() as { address: string; port: number };
    return new MetricsServer(server, metrics, { address: a.address, port: a.port });
  }

  async close(): Promise<void> {
    this.metrics.close();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** The TUN data plane's counters, all workers together and per worker (how SPI steering spread the SAs). */
function dataPlaneGauges(gateway: Gateway, p: string, registers: Registry[]): void {
  new Gauge({
    name: `${p}dataplane_packets`,
    help: 'The TUN data plane: ESP datagrams sent and received, NAT keepalives received',
    labelNames: ['what'],
    registers,
    collect() {
      const d = gateway.status().dataplane;
      if (!d) return;
      this.set({ what: 'esp_sent' }, d.espSent);
      this.set({ what: 'esp_received' }, d.espReceived);
      this.set({ what: 'keepalives_received' }, d.keepalivesReceived);
    },
  });
  // per native worker: how the SPI steering spread the SAs and their ESP over the cores
  new Gauge({
    name: `${p}dataplane_worker_sas`,
    help: 'SAs each native data-plane worker owns (by SPI)',
    labelNames: ['worker'],
    registers,
    collect() {
      gateway.status().dataplane?.workers.forEach((w, i) => this.set({ worker: String(i) }, w.sas));
    },
  });
  new Gauge({
    name: `${p}dataplane_worker_packets`,
    help: 'ESP datagrams each native data-plane worker sent and received (authenticated)',
    labelNames: ['worker', 'what'],
    registers,
    collect() {
      gateway.status().dataplane?.workers.forEach((w, i) => {
        this.set({ worker: String(i), what: 'esp_sent' }, w.espSent);
        this.set({ worker: String(i), what: 'esp_received' }, w.espReceived);
      });
    },
  });
}
