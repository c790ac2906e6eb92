// Observability: what `ike status` and `ike keylog` show of the SA table. Status never carries key material;
// keylog lines are for an operator who already controls the process.
import type { EspSa } from '../esp/index.js';
import { showId } from '../ike/auth-cert.js';
import { fullChildSa, tsToString } from '../ike/index.js';
import type { ChildStatus, GatewayStatus, Phase1Status } from './events.js';
import { childKeylog, isakmpKeylog, type KeylogLine } from './keylog.js';
import { keepaliveSeconds, type PolicyCompiler } from './policy.js';
import type { Child, IsakmpEntry, SaTable } from './sa-table.js';
import type { Transport } from './transport.js';
import type { DataPlaneStats } from '../native.js';

/** An ISAKMP SA's status with whether UDP encapsulation is forced (`encap: true`), which is not a NAT. */
export interface Phase1StatusReport extends Phase1Status {
  nat: Phase1Status['nat'] & { encapForced: boolean };
}

/**
 * A connection that should be up (`initiate: true`) and how far it is: 'up' (a child SA), 'phase1' (an ISAKMP
 * SA, no child), 'connecting' (phase 1 under way) or 'down' (nothing: after a failure, a delete or a dead peer).
 */
export interface ExpectedConnection {
  connection: string;
  state: 'up' | 'phase1' | 'connecting' | 'down';
}

/** gatewayStatus's answer: the shapes of events.ts plus what this room adds (forced encapsulation, expected connections). */
export interface GatewayStatusReport extends GatewayStatus {
  sas: Phase1StatusReport[];
  expected: ExpectedConnection[];
}

type Counters = (spi: Buffer, direction: 'inbound' | 'outbound', esp: EspSa) => { packets: number; bytes: number };

export function gatewayStatus(table: SaTable, transport: Transport, policies: PolicyCompiler, now: number): Omit<GatewayStatusReport, 'admission' | 'errors' | 'esp'> {
  const dp = transport.stats();
  const counters: Counters = (spi, direction, esp) => {
    // an ESP SA lent to the data plane cannot be asked itself: the data plane counts for it
    const s = dp ? dp.sas.find((x) => x.spi === spi.readUInt32BE(0) && x.direction === direction) : esp.stats();
    return { packets: s?.packets ?? 0, bytes: s?.bytes ?? 0 };
  };
  const ports = transport.ports;
  const sas: Phase1StatusReport[] = [];
  for (const e of table.up()) sas.push(phase1Status(e, ports.natt, policies, counters, now));
  const tun = transport.tunName;
  const workers = dp?.workers.map((w) => ({ sas: w.sas, espSent: w.espSent, espReceived: w.espReceived })) ?? [];
  const dataplane = dp && tun !== null ? { tun, keepalivesReceived: dp.keepalives, espSent: dp.espSent, espReceived: dp.espReceived, drops: inboundDrops(dp.drops), workers } : null;
  return { listen: { address: transport.address, port: ports.ike, nattPort: ports.natt }, dataplane, halfOpen: table.counts().halfOpen, sas, expected: expected(table, policies) };
}

/** The data plane's inbound drops (its outbound ones, no SA for a TUN packet and the like, stay in its stats). */
function inboundDrops(d: DataPlaneStats['drops']): NonNullable<GatewayStatus['dataplane']>['drops'] {
  return { unknownSpi: d.unknownSpi, authFailed: d.authFailed, replay: d.replay, malformed: d.malformed, selectorMismatch: d.selectorMismatch, other: d.other };
}

function expected(table: SaTable, policies: PolicyCompiler): ExpectedConnection[] {
  const entries = [...table.values()];
  return policies.all().filter((c) => c.initiate).map((c) => {
    const mine = entries.filter((e) => e.connection === c.name);
    const state = table.currentChild(c.name) !== undefined ? 'up'
      : mine.some((e) => e.state === 'established') ? 'phase1'
      : mine.some((e) => e.state === 'half-open') ? 'connecting' : 'down';
    return { connection: c.name, state };
  });
}

function phase1Status(e: IsakmpEntry, nattPort: number, policies: PolicyCompiler, counters: Counters, now: number): Phase1StatusReport {
  const sa = e.sa!;
  return {
    connection: e.connection,
    role: sa.initiator ? 'initiator' : 'responder',
    mode: sa.mode,
    local: e.natt ? { address: sa.local.address, port: nattPort } : { ...sa.local },
    remote: { ...e.remote },
    localId: showId(sa.localId),
    remoteId: showId(sa.remoteId),
    algorithms: sa.algorithms,
    cookieI: sa.cookieI.toString('hex'),
    cookieR: sa.cookieR.toString('hex'),
    established: new Date(sa.establishedAt).toISOString(),
    lifetimeRemainingSeconds: remaining(sa.expiresAt, now),
    nat: {
      local: sa.nat.localBehindNat,
      remote: sa.nat.remoteBehindNat,
      encapForced: sa.nat.encapForced === true,
      natt: e.natt,
      keepaliveSeconds: keepaliveSeconds(sa, policies.find(e.connection)),
      keepalivesSent: e.keepalives,
    },
    children: e.children.map((c) => childStatus(c, counters, now)),
  };
}

function childStatus(c: Child, counters: Counters, now: number): ChildStatus {
  return {
    spiIn: c.sa.spiIn.toString('hex'),
    spiOut: c.sa.spiOut.toString('hex'),
    proposal: c.sa.proposal,
    mode: c.sa.mode,
    localTs: tsToString(c.sa.localTs),
    remoteTs: tsToString(c.sa.remoteTs),
    encapsulation: c.sa.encapsulation,
    established: new Date(c.sa.establishedAt).toISOString(),
    lifetimeRemainingSeconds: remaining(c.sa.expiresAt, now),
    rekeyed: c.rekeyed,
    in: counters(c.sa.spiIn, 'inbound', c.inbound),
    out: counters(c.sa.spiOut, 'outbound', c.outbound),
    engine: c.inbound.engine,
  };
}

function remaining(expiresAt: number, now: number): number {
  return Math.max(0, Math.round((expiresAt - now) / 1000));
}

/** Wireshark's key table lines for every established SA. */
export function keylogLines(table: SaTable): KeylogLine[] {
  const lines: KeylogLine[] = [];
  for (const e of table.up()) {
    const sa = e.sa!;
    lines.push(isakmpKeylog(sa));
    for (const c of e.children) lines.push(...childKeylog(fullChildSa(c.sa), sa.local, e.remote));
  }
  return lines;
}
