// The verbs that operate one connection of a running gateway over its control socket, close to swanctl's:
//   ike list-conns [--json]            ike initiate NAME [--timeout 30s]
//   ike terminate NAME                 ike reload
// and what `ike gateway` does with SIGHUP (the same reload). Exit 0 ok, 1 refused / failed, 2 usage.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../gateway/config.js';
import { controlRequest, findControlSocket } from '../gateway/control.js';
import type { ConnectionInfo, Gateway, ReloadReport } from '../gateway/gateway.js';
import { withControl } from './status.js';

export const CONNS_USAGE = `usage: ike list-conns | initiate NAME | terminate NAME | reload  [--control PATH] [--json]
  list-conns      every configured connection: remote, mode, whether it is up
  initiate NAME   bring NAME up; waits for its child SA (--timeout, default 30s) and
                  prints it, or the first error of NAME (exit 1)
  terminate NAME  delete NAME's SAs (Deletes go to the peer)
  reload          re-read the gateway's config file and apply the difference (as SIGHUP):
                  new connections start, removed ones are deleted, changed ones are
                  set up again, unchanged ones keep their SAs; a broken file is refused
                  and the running configuration stays
  --control PATH  the gateway's control socket (default: the one gateway socket of this user)
`;

export class ConnsUsageError extends Error {}

const VERBS = ['list-conns', 'initiate', 'terminate', 'reload'] as const;
export type ConnsVerb = (typeof VERBS)[number];
export const isConnsVerb = (v: string | undefined): v is ConnsVerb => (VERBS as readonly string[]).includes(v ?? '');

export async function conns(verb: ConnsVerb, argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { control: { type: 'string' }, json: { type: 'boolean' }, timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    throw new ConnsUsageError((e as Error).message);
  }
  const { values: o, positionals } = parsed;
  if (o.help) {
    process.stdout.write(CONNS_USAGE);
    return 0;
  }
  const named = verb === 'initiate' || verb === 'terminate';
  if (named && positionals.length !== 1) throw new ConnsUsageError(`ike ${verb} needs one connection name`);
  if (!named && positionals.length > 0) throw new ConnsUsageError(`ike ${verb} takes no argument (got '${positionals[0]}')`);
  if (o.timeout !== undefined && verb !== 'initiate') throw new ConnsUsageError('--timeout is for ike initiate');
  const timeout = o.timeout === undefined ? 30 : seconds(o.timeout);
  const out = (text: string, value: unknown) => process.stdout.write(o.json ? JSON.stringify(value, null, 2) + '\n' : text);
  const r = await withControl(async () => {
    const socket = o.control ?? findControlSocket();
    const name = positionals[0]!;
    switch (verb) {
      case 'list-conns': {
        const { connections } = await controlRequest(socket, { cmd: 'list-conns' });
        return out(formatConnections(connections), connections);
      }
      case 'initiate': {
        const { initiated: c } = await controlRequest(socket, { cmd: 'initiate', name, timeout }, (timeout + 5) * 1000);
        return out(`${c.connection}: up, child ${c.spiIn}_i ${c.spiOut}_o ${c.proposal}, ${c.localTs} === ${c.remoteTs}\n`, c);
      }
      case 'terminate':
        await controlRequest(socket, { cmd: 'terminate', name });
        return out(`${name}: terminated\n`, { terminated: name });
      case 'reload': {
        const { reload } = await controlRequest(socket, { cmd: 'reload' }, 30_000);
        return out(formatReload(reload), reload);
      }
    }
  }).catch((e: unknown) => {
    // the gateway refused (no such connection, initiate failed, a broken config): its reason, exit 1
    process.stderr.write(`ike: ${(e as Error).message}\n`);
    return 1;
  });
  return typeof r === 'number' ? r : 0;
}

/** "30", "30s", "2m": seconds; anything else is a usage error. */
function seconds(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(text);
  if (!m) throw new ConnsUsageError(`--timeout: expected a duration such as 30s or 2m, got '${text}'`);
  return Number(m[1]) * ({ s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'] ?? 1);
}

export function formatConnections(list: ConnectionInfo[]): string {
  const rows = list.map((c) => `${c.name}: ${c.state}, ${c.mode} mode to ${c.remote}${c.initiate ? ', initiates' : ''}, ${c.isakmpSas} ISAKMP SA(s), ${c.childSas} child SA(s)\n  ${c.localTs.join(',')} === ${c.remoteTs.join(',')}`);
  return rows.join('\n') + '\n';
}

export function formatReload(r: ReloadReport): string {
  const part = (what: string, names: string[]) => (names.length ? [`${what}: ${names.join(', ')}`] : []);
  const lines = [
    ...part('added', r.added),
    ...part('removed', r.removed),
    ...part('changed', r.changed),
    ...part('unchanged', r.unchanged),
    ...part('needs a restart (not applied)', r.restartNeeded),
    ...r.warnings.map((w) => `warning: ${w}`),
  ];
  return `reloaded${lines.length ? '\n  ' + lines.join('\n  ') : ''}\n`;
}

/**
 * The reload of `ike gateway`: reads `file` again and applies it. A file that does not load is refused with
 * its errors; the running configuration stays.
 */
export async function reloadFromFile(gw: Gateway, file: string): Promise<ReloadReport> {
  let next;
  try {
    next = await loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) throw new Error(`config refused, the running configuration stays: ${e.errors.join('; ')}`);
    throw e;
  }
  return gw.reload(next);
}
