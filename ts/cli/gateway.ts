// `ike gateway`: a gateway run as a daemon until SIGINT / SIGTERM. One line per event (or one JSON object
// with --json), keys written for Wireshark with --keylog, the control socket (status, keylog, list-conns,
// initiate, terminate, reload), SIGHUP = reload, the Prometheus endpoint when the config has "metrics".
// A start-up failure closes whatever was opened and rejects (main.ts turns it into exit 1, or 2 for config).
import { loadConfig } from '../gateway/config.js';
import { ControlServer, defaultControlPath } from '../gateway/control.js';
import { Gateway } from '../gateway/gateway.js';
import { KeylogAppender } from '../gateway/keylog-files.js';
import { command, runCommand } from './args.js';
import { reloadFromFile } from './conns.js';
import { EventLog, LOG_LEVELS, type LogLevel } from './log.js';

export const GATEWAY_COMMAND = command({
  name: 'ike gateway',
  summary: `Runs a gateway until SIGINT / SIGTERM (SIGHUP: reload the config file, as ike reload), one line
per event on stdout with its time (listening, phase1-up, child-up, remote-access, child-down,
phase1-down, error); under load, SA events beyond 20 per 10 s are counted in a summary line.
A pre-shared key comes from the config file (auth.psk, auth.pskEnv or auth.pskFile), never from
the command line.`,
  options: {
    config: { kind: 'string', value: 'FILE', required: true, help: 'the configuration, JSON or YAML by its name (.yaml / .yml) (examples/README.md)' },
    json: { kind: 'flag', help: 'one JSON object per event line (every event: no summaries)' },
    keylog: {
      kind: 'string',
      value: 'DIR',
      help: 'write the session keys of connections with "keylog": true to DIR/ikev1_decryption_table and DIR/esp_sa (Wireshark\'s files; new 0600 files at each start; DIR ours and not group/other-writable)',
    },
    control: {
      kind: 'string',
      value: 'PATH',
      help: `its control socket for ike status / keylog / list-conns / initiate / terminate / reload (mode 0600; default one per listen address, e.g. ${defaultControlPath({ address: '0.0.0.0', port: 500 })})`,
    },
    'no-control': { kind: 'flag', help: 'no control socket' },
    'log-level': { kind: 'choice', choices: LOG_LEVELS, help: 'error, warn, info (default) or debug (every event, no summaries)' },
  },
  notes: 'Exit codes: 0 stopped by a signal, 1 runtime failure, 2 usage or configuration error.',
});

/** `ike gateway ARGS`: parses them (help, one-line usage errors) and runs the gateway. */
export function gateway(argv: string[]): Promise<number> {
  return runCommand(GATEWAY_COMMAND, argv, ({ values }) =>
    runGateway({
      file: values.config,
      json: values.json,
      keylogDir: values.keylog,
      control: values['no-control'] ? null : values.control,
      logLevel: values['log-level'] as LogLevel | undefined,
    }),
  );
}

export interface GatewayRun {
  file: string;
  json: boolean;
  keylogDir?: string | undefined;
  /** The control socket path; undefined: the default one per listen address; null: none. */
  control?: string | null | undefined;
  /** Default info (ts/cli/log.ts). */
  logLevel?: LogLevel | undefined;
}

type Print = (event: string, fields: Record<string, unknown>) => void;

export async function runGateway(run: GatewayRun): Promise<number> {
  const config = await loadConfig(run.file);
  for (const w of config.warnings) process.stderr.write(`ike: warning: ${w}\n`);
  // checked and opened before anything starts: a refused key directory stops the gateway here
  const keylog = run.keylogDir !== undefined ? new KeylogAppender(run.keylogDir) : undefined;
  if (keylog && !config.connections.some((c) => c.keylog)) {
    process.stderr.write(`ike: warning: --keylog ${keylog.dir}: no connection has "keylog": true, so nothing will be written there (ike keylog --out DIR takes the keys of every SA)\n`);
  }
  const gw = new Gateway(config);
  const log = new EventLog({ json: run.json, level: run.logLevel ?? 'info' });
  const print: Print = (event, fields) => log.event(event, fields);
  printEvents(gw, print);
  if (keylog) writeKeylog(gw, keylog);
  // one reload at a time (SIGHUP and `ike reload` may meet)
  let reloading: Promise<unknown> = Promise.resolve();
  const reload = () => {
    const r = reloading.then(() => reloadFromFile(gw, run.file));
    reloading = r.catch(() => undefined);
    return r;
  };
  const control = run.control === null ? null : await ControlServer.listen(gw, run.control ?? defaultControlPath(config.listen), { reload });
  const onHup = () =>
    reload().then(
      (r) => print('reload', { ...r }),
      (e: Error) => print('error', { kind: 'CONFIG', message: e.message }),
    );
  let metrics: { close(): Promise<void> } | undefined;
  try {
    await gw.start();
    // once started: a gateway refused at start-up says only why
    if (!config.dataplane) {
      process.stderr.write('ike: note: no "dataplane" in the config: SAs are negotiated, but this process carries no traffic through them (see examples/tunnel-dataplane.json)\n');
    }
    if (control) print('control', { path: control.path });
    if (config.metrics) {
      const { MetricsServer } = await import('../gateway/metrics.js');
      const m = (metrics = await MetricsServer.listen(gw, config.metrics));
      const host = m.address.address.includes(':') ? `[${m.address.address}]` : m.address.address;
      print('metrics', { url: `http://${host}:${m.address.port}/metrics` });
    }
    process.on('SIGHUP', onHup);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    process.off('SIGHUP', onHup);
    await gw.stop();
  } finally {
    log.flush();
    await metrics?.close();
    await control?.close();
    // a start-up failure after the sockets were bound (the metrics port taken): nothing stays open
    await gw.stop();
    keylog?.close();
  }
  print('stopped', {});
  return 0;
}

function printEvents(gw: Gateway, print: Print): void {
  const at = (e: { address: string; port: number }) => `${e.address}:${e.port}`;
  gw.on('listening', (l) => print('listening', { address: l.address, port: l.port, nattPort: l.nattPort }));
  gw.on('phase1-up', (e) =>
    print('phase1-up', {
      connection: e.connection,
      role: e.initiator ? 'initiator' : 'responder',
      mode: e.mode,
      remote: at(e.remote),
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
      ...(e.child.natOa ? { natOa: e.child.natOa } : {}),
    }),
  );
  // XAUTH / Mode-Config progress (never a password: the events carry the user name and the configuration received)
  gw.on('remote-access', (e) => print('remote-access', { connection: e.connection, remote: at(e.remote), cookieI: e.cookieI, ...e.event }));
  gw.on('child-down', (e) => print('child-down', { connection: e.connection, spiIn: e.spiIn, spiOut: e.spiOut, reason: e.reason }));
  gw.on('phase1-down', (e) => print('phase1-down', { connection: e.connection, remote: at(e.remote), reason: e.reason }));
  gw.on('error', (e) => print('error', { connection: e.connection, remote: e.remote ? at(e.remote) : undefined, kind: e.kind, message: e.message }));
}

/** Wireshark's key tables, a line per SA of the connections with "keylog": true (ts/gateway/keylog-files.ts). */
function writeKeylog(gw: Gateway, keylog: KeylogAppender): void {
  gw.on('keylog', (k) => {
    try {
      keylog.append(k);
    } catch (e) {
      // a full disk must not stop the gateway: say it once, write no more keys
      process.stderr.write(`ike: warning: --keylog: cannot write ${keylog.dir} (${(e as NodeJS.ErrnoException).code ?? String(e)}); no more keys are written\n`);
      keylog.close();
    }
  });
}
