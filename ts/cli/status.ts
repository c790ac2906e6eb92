// `ike status [--control PATH] [--json]`: the SAs of a running gateway, asked over its control socket.
import { ControlError, controlRequest, findControlSocket } from '../gateway/control.js';
import type { ChildStatus, GatewayStatus, Phase1Status } from '../gateway/gateway.js';
import type { ExpectedConnection, GatewayStatusReport, Phase1StatusReport } from '../gateway/status.js';
import { command, runCommand, type OptionSpec } from './args.js';

/** --control, shared by the commands that talk to a running gateway. */
export const CONTROL_OPTION = {
  kind: 'string',
  value: 'PATH',
  help: "the gateway's control socket (default: the one gateway control socket of this user)",
} as const satisfies OptionSpec;

export const STATUS_COMMAND = command({
  name: 'ike status',
  summary: `The SAs of the gateway listening on the control socket: ISAKMP SAs and their child SAs,
counters and remaining lifetimes, as a table or (--json) one JSON object; never key material.`,
  options: {
    control: CONTROL_OPTION,
    json: { kind: 'flag', help: 'one JSON object instead of the table' },
  },
  notes: 'Exit 1 if no gateway runs there.',
});

/** Runs a control request for a CLI command: one-line errors, exit 1 when no gateway answers. */
export async function withControl<T>(run: () => Promise<T>): Promise<T | number> {
  try {
    return await run();
  } catch (e) {
    if (!(e instanceof ControlError)) throw e;
    process.stderr.write(`ike: ${e.message}\n`);
    return 1;
  }
}

export function status(argv: string[]): Promise<number> {
  return runCommand(STATUS_COMMAND, argv, async ({ values }) => {
    const r = await withControl(() => controlRequest(values.control ?? findControlSocket(), { cmd: 'status' }));
    if (typeof r === 'number') return r;
    process.stdout.write(values.json ? JSON.stringify(r.status, null, 2) + '\n' : formatStatus(r.status));
    return 0;
  });
}

/** Several data plane workers: the SAs each owns (one worker: nothing to add). */
function workersText(workers: readonly { sas: number }[] | undefined): string {
  return workers && workers.length > 1 ? `, ${workers.length} workers with ${workers.map((w) => w.sas).join('/')} SAs` : '';
}

/** The status as text: a header line, then one block per ISAKMP SA with its children indented. */
export function formatStatus(s: GatewayStatus & Partial<Pick<GatewayStatusReport, 'expected'>>): string {
  const lines = [`listening ${s.listen.address} ike ${s.listen.port} nat-t ${s.listen.nattPort}` +
    (s.dataplane ? `, data plane ${s.dataplane.tun} (esp out ${s.dataplane.espSent} in ${s.dataplane.espReceived}${dropsText(s.dataplane.drops)}, keepalives in ${s.dataplane.keepalivesReceived}${workersText(s.dataplane.workers)})` : '') +
    `, ${s.sas.length} ISAKMP SA(s), ${s.halfOpen} half-open`];
  for (const x of s.expected ?? []) if (x.state !== 'up') lines.push(`connection ${x.connection} should be up but is not: ${NOT_UP[x.state]}`);
  lines.push(...healthLines(s));
  for (const sa of s.sas) lines.push(...phase1Lines(sa));
  return lines.join('\n') + '\n';
}

const NOT_UP: Record<Exclude<ExpectedConnection['state'], 'up'>, string> = {
  phase1: 'phase 1 is up but it has no child SA',
  connecting: 'phase 1 under way',
  down: 'no SA (failed, deleted, or the peer is dead: see the error and down events)',
};

/** ', dropped: 3 authFailed, 1 replay' (only the reasons that happened). */
function dropsText(d: object | undefined): string {
  const seen = Object.entries(d ?? {}).filter(([, n]) => typeof n === 'number' && n > 0);
  return seen.length > 0 ? `, dropped: ${seen.map(([k, n]) => `${n} ${k}`).join(', ')}` : '';
}

/** ESP on the JavaScript path, admission (busy mode, refusals) and the error counts, when there is something to say. */
function healthLines(s: GatewayStatus): string[] {
  const out: string[] = [];
  if (s.esp && (s.esp.received > 0 || dropsText(s.esp.drops) !== '')) out.push(`esp in ${s.esp.received} (authenticated)${dropsText(s.esp.drops)}`);
  const a = s.admission;
  const refused = a ? Object.entries(a.refused).filter(([, n]) => n > 0) : [];
  if (a && (a.busy || a.evicted > 0 || refused.length > 0)) {
    out.push(`admission: ${a.busy ? 'BUSY' : 'normal'} (busy ${a.busyEntered} time(s)), ${a.admitted} message 1s admitted, ${a.evicted} unanswered exchanges dropped` +
      (refused.length > 0 ? `, refused: ${refused.map(([k, n]) => `${k} ${n}`).join(', ')}` : ''));
  }
  const e = s.errors;
  if (e && e.total > 0) {
    const top = e.top.slice(0, 3).map((t) => `${t.kind} from ${t.source || '-'} x${t.count}`).join(', ');
    out.push(`errors: ${e.total} (${e.emitted} reported, ${e.repeats} repeats, ${e.suppressed} held back); most: ${top}`);
  }
  return out;
}

// encapForced: from gatewayStatus (Phase1StatusReport); absent from an older gateway's answer.
function phase1Lines(sa: Phase1Status & { nat: Partial<Phase1StatusReport['nat']> }): string[] {
  const nat = ([sa.nat.local && 'local', sa.nat.remote && 'remote'].filter(Boolean).join('+') || 'none') +
    (sa.nat.encapForced ? ', UDP encapsulation forced' : '');
  const out = [
    `${sa.connection}: ${sa.role} ${sa.mode} mode, ${ep(sa.local)} <-> ${ep(sa.remote)}, ${sa.localId} <-> ${sa.remoteId}`,
    `  ${sa.algorithms}, cookies ${sa.cookieI}:${sa.cookieR}, up since ${sa.established}, expires in ${duration(sa.lifetimeRemainingSeconds)}`,
    `  nat ${nat}${sa.nat.natt ? ', IKE on the NAT-T port' : ''}${sa.nat.keepaliveSeconds ? `, keepalive every ${sa.nat.keepaliveSeconds}s (${sa.nat.keepalivesSent} sent)` : ''}`,
  ];
  for (const c of sa.children) out.push(...childLines(c));
  return out;
}

function childLines(c: ChildStatus): string[] {
  return [
    `  child ${c.spiIn}_i ${c.spiOut}_o: ${c.proposal} ${c.mode}${c.encapsulation ? ' in UDP' : ', plain ESP'}${c.rekeyed ? ' (rekeyed, draining)' : ''}, expires in ${duration(c.lifetimeRemainingSeconds)}`,
    `    ${c.localTs} === ${c.remoteTs}`,
    `    in ${c.in.packets} packets ${c.in.bytes} bytes, out ${c.out.packets} packets ${c.out.bytes} bytes, ESP engine ${c.engine ?? '?'}`,
  ];
}

const ep = (e: { address: string; port: number }) => (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`);

function duration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s).padStart(2, '0')}s` : `${s}s`;
}
