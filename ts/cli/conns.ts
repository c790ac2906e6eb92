// The verbs that operate one connection of a running gateway over its control socket, close to swanctl's:
//   ike list-conns [--json]            ike initiate NAME [--timeout 30s]
//   ike terminate NAME                 ike reload
// and what `ike gateway` does with SIGHUP (the same reload). Exit 0 ok, 1 refused / failed, 2 usage.
import { ConfigError, loadConfig } from '../gateway/config.js';
import { controlRequest, findControlSocket } from '../gateway/control.js';
import type { ConnectionInfo, Gateway, ReloadReport } from '../gateway/gateway.js';
import { command, runCommand } from './args.js';
import { CONTROL_OPTION, withControl } from './status.js';

const VERBS = ['list-conns', 'initiate', 'terminate', 'reload'] as const;
export type ConnsVerb = (typeof VERBS)[number];
export const isConnsVerb = (v: string | undefined): v is ConnsVerb => (VERBS as readonly string[]).includes(v ?? '');

const SUMMARY: Record<ConnsVerb, string> = {
  'list-conns': 'Every configured connection of a running gateway: remote, mode, whether it is up.',
  initiate: `Brings connection NAME up; waits for its child SA (--timeout) and prints it, or the first
error of NAME (exit 1).`,
  terminate: "Deletes connection NAME's SAs (Deletes go to the peer).",
  reload: `Re-reads the gateway's config file and applies the difference (as SIGHUP): new connections
start, removed ones are deleted, changed ones are set up again, unchanged ones keep their SAs;
a broken file is refused and the running configuration stays.`,
};

/** The command line of one verb: --control and --json for all, NAME for initiate / terminate, --timeout for initiate. */
function verbCommand(verb: ConnsVerb) {
  const named = verb === 'initiate' || verb === 'terminate';
  return command({
    name: `ike ${verb}`,
    summary: SUMMARY[verb],
    options: {
      control: CONTROL_OPTION,
      json: { kind: 'flag', help: 'the answer as JSON' },
      ...(verb === 'initiate' ? { timeout: { kind: 'duration', min: 0.1, help: 'how long to wait for the child SA (default 30s)' } as const } : {}),
    },
    ...(named ? { synopsis: 'NAME', positionals: { min: 1, max: 1, name: 'NAME (a connection of the config)' } } : {}),
    notes: 'Exit 0 ok, 1 refused or failed (the gateway says why), 2 usage.',
  });
}

export function conns(verb: ConnsVerb, argv: string[]): Promise<number> {
  return runCommand(verbCommand(verb), argv, ({ values, positionals }) => run(verb, values as { control?: string; json: boolean; timeout?: number }, positionals));
}

async function run(verb: ConnsVerb, o: { control?: string; json: boolean; timeout?: number }, positionals: string[]): Promise<number> {
  const timeout = o.timeout ?? 30;
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
