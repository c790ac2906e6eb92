// `ike gateway --config FILE`: a gateway in the foreground, one line per event on stdout, until SIGINT / SIGTERM.
import { loadConfig } from '../gateway/config.js';
import { ControlServer, defaultControlPath } from '../gateway/control.js';
import { Gateway, type GatewayErrorEvent, type Phase1UpEvent } from '../gateway/gateway.js';
import { KeylogAppender } from '../gateway/keylog-files.js';
import { command, runCommand } from './args.js';
import { EventLog, LEVELS, type Level } from './event-log.js';

export const GATEWAY_COMMAND = command({
  name: 'ike gateway',
  summary: `Runs a gateway until SIGINT / SIGTERM, one line per event on stdout (listening, phase1-up,
child-up, remote-access, child-down, phase1-down, error), each with its time and level; past --burst
lines of a kind in 10 s the rest are counted in one summary line. Config warnings go to stderr.
A pre-shared key comes from the config file (auth.psk, auth.pskEnv or auth.pskFile), never from
the command line.`,
  options: {
    config: { kind: 'string', value: 'FILE', required: true, help: 'the configuration (examples/README.md)' },
    json: { kind: 'flag', help: 'one JSON object per event line' },
    keylog: {
      kind: 'string',
      value: 'DIR',
      help: 'write the session keys of connections with "keylog": true to DIR/ikev1_decryption_table and DIR/esp_sa (Wireshark\'s files; new 0600 files at each start; DIR ours and not group/other-writable)',
    },
    control: { kind: 'string', value: 'PATH', help: `its control socket for ike status / ike keylog (mode 0600, default ${defaultControlPath()})` },
    'no-control': { kind: 'flag', help: 'no control socket' },
    'log-level': { kind: 'choice', choices: LEVELS, help: 'print events of this level and above: error, warn (failed logins), info (every event; default)' },
    burst: {
      kind: 'integer',
      min: 1,
      help: 'lines per event kind per 10 s before the rest are only counted in a summary line (default 20; with --json no limit): quiet under load',
    },
  },
  notes: 'Exit codes: 0 stopped by a signal, 1 runtime failure, 2 usage or configuration error.',
});

type Print = (event: string, fields: Record<string, unknown>, level?: Level) => void;

/** One line per gateway event (never a key or a password: the events carry none). */
function printEvents(gw: Gateway, print: Print): void {
  gw.on('listening', (l) => print('listening', { address: l.address, port: l.port, nattPort: l.nattPort }));
  gw.on('phase1-up', (e: Phase1UpEvent) =>
    print('phase1-up', {
      connection: e.connection,
      role: e.initiator ? 'initiator' : 'responder',
      mode: e.mode,
      remote: `${e.remote.address}:${e.remote.port}`,
      localId: e.localId,
      remoteId: e.remoteId,
      algorithms: e.algorithms,
      lifetime: e.lifetimeSeconds,
      cookieI: e.cookieI,
      cookieR: e.cookieR,
      natLocal: e.natDetected.local,
      natRemote: e.natDetected.remote,
    }),
  );
  gw.on('child-up', (e) =>
    print('child-up', {
      connection: e.connection,
      role: e.initiator ? 'initiator' : 'responder',
      spiIn: e.spiIn,
      spiOut: e.spiOut,
      proposal: e.proposal,
      mode: e.mode,
      encap: e.encapsulation,
      localTs: e.localTs,
      remoteTs: e.remoteTs,
      lifetime: e.lifetimeSeconds,
      rekey: e.rekey,
    }),
  );
  // XAUTH / Mode-Config progress (never a password: the events carry the user name and the configuration received)
  gw.on('remote-access', (e) =>
    print('remote-access', { connection: e.connection, remote: `${e.remote.address}:${e.remote.port}`, cookieI: e.cookieI, ...e.event }, /Failed$/.test(e.event.type) ? 'warn' : 'info'),
  );
  gw.on('child-down', (e) => print('child-down', { connection: e.connection, spiIn: e.spiIn, spiOut: e.spiOut, reason: e.reason }));
  gw.on('phase1-down', (e) => print('phase1-down', { connection: e.connection, remote: `${e.remote.address}:${e.remote.port}`, reason: e.reason }));
  gw.on('error', (e: GatewayErrorEvent) =>
    print('error', { connection: e.connection, remote: e.remote ? `${e.remote.address}:${e.remote.port}` : undefined, kind: e.kind, message: e.message }, 'error'),
  );
}

export function gateway(argv: string[]): Promise<number> {
  return runCommand(GATEWAY_COMMAND, argv, async ({ values }) => {
    const config = await loadConfig(values.config);
    for (const w of config.warnings) process.stderr.write(`ike: warning: ${w}\n`);
    // --json output is read by programs (supervisors, tests), which want every event: no burst limit unless asked
    const burst = values.burst ?? (values.json ? Infinity : 20);
    const log = new EventLog({ json: values.json, level: (values['log-level'] as Level | undefined) ?? 'info', burst });
    const print: Print = (event, fields, level = 'info') => log.log(level, event, fields);
    // checked and opened before anything starts: a refused directory stops the gateway here
    const keylog = values.keylog !== undefined ? new KeylogAppender(values.keylog) : undefined;
    if (keylog && !config.connections.some((c) => c.keylog)) {
      process.stderr.write(`ike: warning: --keylog ${keylog.dir}: no connection has "keylog": true, so nothing will be written\n`);
    }
    const gw = new Gateway(config);
    printEvents(gw, print);
    gw.on('keylog', (k) => {
      try {
        keylog?.append(k);
      } catch (e) {
        // a full disk must not stop the gateway: say it once, write no more keys
        process.stderr.write(`ike: warning: --keylog: cannot write ${keylog?.dir} (${(e as NodeJS.ErrnoException).code ?? String(e)}); no more keys are written\n`);
        keylog?.close();
      }
    });
    let control: ControlServer | null = null;
    try {
      control = values['no-control'] ? null : await ControlServer.listen(gw, values.control ?? defaultControlPath());
      await gw.start();
      if (control) print('control', { path: control.path });
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await gw.stop();
      print('stopped', {});
    } finally {
      await control?.close();
      keylog?.close();
      log.close();
    }
    return 0;
  });
}
