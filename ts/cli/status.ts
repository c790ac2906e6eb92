// `ike status [--control PATH] [--json]`: the SAs of a running gateway, asked over its control socket.
import { ControlError, controlRequest, findControlSocket } from '../gateway/control.js';
import type { ChildStatus, GatewayStatus, Phase1Status } from '../gateway/gateway.js';

export const STATUS_USAGE = `usage: ike status [--control PATH] [--json]
  the SAs of the gateway listening on PATH (default: the one gateway control socket of this user):
  ISAKMP SAs and their child SAs, counters and remaining lifetimes, as a table
  or (--json) one JSON object; never key material. Exit 1 if no gateway runs there.
`;

/** The --control / --json style options of `ike status` and `ike keylog`; a string is a usage error. */
export function controlArgs(argv: string[], known: readonly string[]): Map<string, string | true> | string {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) return `unexpected argument '${a}'`;
    const [k, v] = a.slice(2).split('=', 2) as [string, string | undefined];
    if (!known.includes(k)) return `unknown option --${k}`;
    if (k === 'json' || k === 'help') flags.set(k, true);
    else {
      const value = v ?? argv[++i];
      if (value === undefined) return `--${k} needs a value`;
      flags.set(k, value);
    }
  }
  return flags;
}

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

export async function status(argv: string[]): Promise<number> {
  const flags = controlArgs(argv, ['control', 'json', 'help']);
  if (typeof flags === 'string') {
    process.stderr.write(`ike: ${flags} (try 'ike status --help')\n`);
    return 2;
  }
  if (flags.has('help')) {
    process.stdout.write(STATUS_USAGE);
    return 0;
  }
  const r = await withControl(() => controlRequest((flags.get('control') as string | undefined) ?? findControlSocket(), { cmd: 'status' }));
  if (typeof r === 'number') return r;
  process.stdout.write(flags.has('json') ? JSON.stringify(r.status, null, 2) + '\n' : formatStatus(r.status));
  return 0;
}

/** The status as text: a header line, then one block per ISAKMP SA with its children indented. */
export function formatStatus(s: GatewayStatus): string {
  const lines = [`listening ${s.listen.address} ike ${s.listen.port} nat-t ${s.listen.nattPort}` +
    (s.dataplane ? `, data plane ${s.dataplane.tun} (esp out ${s.dataplane.espSent} in ${s.dataplane.espReceived}, keepalives in ${s.dataplane.keepalivesReceived})` : '') +
    `, ${s.sas.length} ISAKMP SA(s), ${s.halfOpen} half-open`];
  for (const sa of s.sas) lines.push(...phase1Lines(sa));
  return lines.join('\n') + '\n';
}

function phase1Lines(sa: Phase1Status): string[] {
  const nat = [sa.nat.local && 'local', sa.nat.remote && 'remote'].filter(Boolean).join('+') || 'none';
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
    `    in ${c.in.packets} packets ${c.in.bytes} bytes, out ${c.out.packets} packets ${c.out.bytes} bytes`,
  ];
}

const ep = (e: { address: string; port: number }) => (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`);

function duration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s).padStart(2, '0')}s` : `${s}s`;
}
