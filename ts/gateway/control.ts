// The local control socket of `ike gateway`: a unix socket, owner-only (mode 0600), speaking
// newline-delimited JSON. One request per line, one response per line:
//
//   {"cmd":"status"}  -> {"ok":true,"status":GatewayStatus}        (no key material)
//   {"cmd":"keylog"}  -> {"ok":true,"lines":[{"table","line"}...]}  (session keys of every current SA)
//   {"cmd":"list-conns"}             -> {"ok":true,"connections":[ConnectionInfo...]}
//   {"cmd":"initiate","name":N}      -> {"ok":true,"initiated":{...child}} once a child SA of N is up, or
//                                       {"ok":false,"error":...} with the first error of N ("timeout": seconds, default 30)
//   {"cmd":"terminate","name":N}     -> {"ok":true,"terminated":N} (Deletes sent for N's SAs)
//   {"cmd":"reload"}                 -> {"ok":true,"reload":ReloadReport} (the gateway re-reads its config file)
//   anything else     -> {"ok":false,"error":"..."}
//
// `keylog` hands out keys for all SAs, whatever the connections' `keylog` setting: whoever can open the
// socket is root or the gateway's own user, who could read the process memory anyway.
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { lstatSync, readdirSync, unlinkSync } from 'node:fs';
import type { ChildUpEvent, ConnectionInfo, Gateway, GatewayErrorEvent, GatewayStatus, ReloadReport } from './gateway.js';
import type { KeylogLine } from './keylog.js';

export const CONTROL_SOCKET_NAME = 'ikev1-engine.sock';
/** A request line longer than this closes the connection (the protocol has only tiny requests). */
const MAX_REQUEST = 4096;

export type ControlErrorKind = 'IN_USE' | 'NOT_A_SOCKET' | 'NO_GATEWAY' | 'PROTOCOL' | 'TIMEOUT';

export class ControlError extends Error {
  constructor(readonly kind: ControlErrorKind, message: string) {
    super(message);
    this.name = 'ControlError';
  }
}

/**
 * Where control sockets live: $IKE_CONTROL_DIR when set; else root: /run; others: $XDG_RUNTIME_DIR (a private
 * per-user directory) or the temp dir.
 */
export function controlDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (env.IKE_CONTROL_DIR) return env.IKE_CONTROL_DIR;
  if (process.getuid?.() === 0) return '/run';
  return env.XDG_RUNTIME_DIR || os.tmpdir();
}

/** The temp dir is shared by all users: socket names there carry the user id. */
const sharedDirectory = (env: NodeJS.ProcessEnv) => !env.IKE_CONTROL_DIR && process.getuid?.() !== 0 && !env.XDG_RUNTIME_DIR;

/**
 * The control socket of a gateway listening on `listen`: one per listen address and port, so two gateways on
 * one host (two configs) each get their own without --control. Without `listen`, the host-wide name of earlier
 * versions. In the shared temp dir the name carries the user id.
 */
export function defaultControlPath(listen?: { address: string; port: number }, env: NodeJS.ProcessEnv = process.env): string {
  const dir = controlDirectory(env);
  const user = sharedDirectory(env) ? `-${process.getuid?.() ?? 'user'}` : '';
  if (!listen) return path.join(dir, user ? `ikev1-engine${user}.sock` : CONTROL_SOCKET_NAME);
  return path.join(dir, `ikev1-engine${user}-${listen.address.replace(/[^0-9A-Za-z.]/g, '_')}-${listen.port}.sock`);
}

/**
 * The control socket a client (ike status, keylog, list-conns, ...) talks to without --control: the one
 * gateway socket of this user in controlDirectory(). With none or several, a ControlError says which exist.
 */
export function findControlSocket(env: NodeJS.ProcessEnv = process.env): string {
  const dir = controlDirectory(env);
  const user = sharedDirectory(env) ? `-${process.getuid?.() ?? 'user'}` : '';
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    /* no directory: no gateway */
  }
  const mine = names
    .filter((n) => n.endsWith('.sock') && (n === CONTROL_SOCKET_NAME || n.startsWith(`ikev1-engine${user}`)))
    .map((n) => path.join(dir, n))
    .filter((p) => {
      try {
        const st = lstatSync(p);
        return st.isSocket() && st.uid === process.getuid?.();
      } catch {
        return false;
      }
    });
  if (mine.length === 1) return mine[0]!;
  if (mine.length === 0) throw new ControlError('NO_GATEWAY', `no gateway control socket in ${dir} (is ike gateway running? else name it with --control PATH)`);
  throw new ControlError('NO_GATEWAY', `several gateways run here; choose one with --control: ${mine.join(', ')}`);
}

export type ControlRequest =
  | { cmd: 'status' }
  | { cmd: 'keylog' }
  | { cmd: 'list-conns' }
  | { cmd: 'initiate'; name: string; timeout?: number }
  | { cmd: 'terminate'; name: string }
  | { cmd: 'reload' };
/** What `initiate` answers once the connection's child SA is up. */
export interface InitiatedChild {
  connection: string;
  spiIn: string;
  spiOut: string;
  proposal: string;
  localTs: string;
  remoteTs: string;
}
export type ControlResponse =
  | { ok: true; status: GatewayStatus }
  | { ok: true; lines: KeylogLine[] }
  | { ok: true; connections: ConnectionInfo[] }
  | { ok: true; initiated: InitiatedChild }
  | { ok: true; terminated: string }
  | { ok: true; reload: ReloadReport }
  | { ok: false; error: string };

export interface ControlOptions {
  /** Re-reads the configuration and applies it (the CLI's loadConfig + gateway.reload); absent: `reload` is refused. */
  reload?: () => Promise<ReloadReport>;
}
/** How long `initiate` waits for the child SA by default, and at most. */
const INITIATE_TIMEOUT_S = 30;
const INITIATE_TIMEOUT_MAX_S = 600;

export class ControlServer {
  private constructor(
    readonly path: string,
    private readonly server: net.Server,
    /** The socket file we created (device + inode): close() removes only that one. */
    private readonly identity: string,
  ) {}

  /**
   * Listens on `socketPath` for `gateway`. Refuses (ControlError IN_USE) when a live process answers there,
   * replaces a stale socket file left by a gateway that died, never removes anything that is not a socket.
   */
  static async listen(gateway: Gateway, socketPath: string, options: ControlOptions = {}): Promise<ControlServer> {
    await clearStale(socketPath);
    const server = net.createServer((c) => serve(gateway, options, c));
    // created with mode 0600 from the start: no window in which another user could connect
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      // two gateways raced past clearStale(): the loser is told plainly
      if (err.code === 'EADDRINUSE') throw new ControlError('IN_USE', `control socket ${socketPath} is in use by another gateway`);
      throw new ControlError('PROTOCOL', `cannot listen on control socket ${socketPath}: ${err.message}`);
    } finally {
      process.umask(umask);
    }
    const st = lstatSync(socketPath);
    return new ControlServer(socketPath, server, `${st.dev}:${st.ino}`);
  }

  /** Stops listening and removes the socket file (if it is still ours). */
  async close(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
    try {
      const st = lstatSync(this.path);
      if (`${st.dev}:${st.ino}` === this.identity) unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}

async function clearStale(socketPath: string): Promise<void> {
  let st;
  try {
    st = lstatSync(socketPath);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) throw new ControlError('NOT_A_SOCKET', `${socketPath} exists and is not a socket; not replacing it`);
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(socketPath);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false)); // ECONNREFUSED: nobody listens, the file is stale
  });
  if (live) throw new ControlError('IN_USE', `a gateway is already running with control socket ${socketPath} (use --control PATH for another one)`);
  unlinkSync(socketPath);
}

function serve(gateway: Gateway, options: ControlOptions, c: net.Socket): void {
  let buf = '';
  // answers leave in the order of the requests, also when one of them (initiate, reload) takes a while
  let queue: Promise<void> = Promise.resolve();
  c.setEncoding('utf8');
  c.on('error', () => undefined);
  c.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      queue = queue.then(async () => {
        const r = await answer(gateway, options, line).catch((e: unknown) => ({ ok: false as const, error: (e as Error)?.message ?? String(e) }));
        if (!c.destroyed) c.write(JSON.stringify(r) + '\n');
      });
    }
    if (buf.length > MAX_REQUEST) {
      c.end(JSON.stringify({ ok: false, error: 'request too long' }) + '\n');
      buf = '';
    }
  });
}

async function answer(gateway: Gateway, options: ControlOptions, line: string): Promise<ControlResponse> {
  let req: unknown;
  try {
    req = JSON.parse(line);
  } catch {
    return { ok: false, error: 'requests are JSON objects, one per line' };
  }
  const r = typeof req === 'object' && req !== null ? (req as Record<string, unknown>) : {};
  const name = typeof r.name === 'string' ? r.name : undefined;
  switch (r.cmd) {
    case 'status':
      return { ok: true, status: gateway.status() };
    case 'keylog':
      return { ok: true, lines: gateway.keylogLines() };
    case 'list-conns':
      return { ok: true, connections: gateway.connections() };
    case 'initiate': {
      if (name === undefined) return { ok: false, error: 'initiate needs "name"' };
      const timeout = typeof r.timeout === 'number' && r.timeout > 0 ? Math.min(r.timeout, INITIATE_TIMEOUT_MAX_S) : INITIATE_TIMEOUT_S;
      return { ok: true, initiated: await initiate(gateway, name, timeout) };
    }
    case 'terminate':
      if (name === undefined) return { ok: false, error: 'terminate needs "name"' };
      gateway.terminate(name);
      return { ok: true, terminated: name };
    case 'reload':
      if (!options.reload) return { ok: false, error: 'this gateway was not started from a config file: nothing to reload' };
      return { ok: true, reload: await options.reload() };
    default:
      return { ok: false, error: `unknown cmd ${JSON.stringify(r.cmd)}; known: status, keylog, list-conns, initiate, terminate, reload` };
  }
}

/** Starts the connection and waits for its child SA, or the first error it reports, or the timeout. */
function initiate(gateway: Gateway, name: string, timeoutS: number): Promise<InitiatedChild> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      gateway.off('child-up', up);
      gateway.off('error', failed);
    };
    const up = (e: ChildUpEvent) => {
      if (e.connection !== name) return;
      done();
      resolve({ connection: name, spiIn: e.spiIn, spiOut: e.spiOut, proposal: e.proposal, localTs: e.localTs, remoteTs: e.remoteTs });
    };
    const failed = (e: GatewayErrorEvent) => {
      if (e.connection !== name) return;
      done();
      reject(new Error(`${e.kind}: ${e.message}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no child SA for '${name}' within ${timeoutS} s (the gateway keeps trying: see its log)`));
    }, timeoutS * 1000);
    gateway.on('child-up', up);
    gateway.on('error', failed);
    gateway.initiate(name).catch((e: unknown) => {
      done();
      reject(e);
    });
  });
}

/** One request to the gateway at `socketPath`. ControlError NO_GATEWAY when nothing listens there. */
export function controlRequest(socketPath: string, req: { cmd: 'status' }, timeoutMs?: number): Promise<{ ok: true; status: GatewayStatus }>;
export function controlRequest(socketPath: string, req: { cmd: 'keylog' }, timeoutMs?: number): Promise<{ ok: true; lines: KeylogLine[] }>;
export function controlRequest(socketPath: string, req: { cmd: 'list-conns' }, timeoutMs?: number): Promise<{ ok: true; connections: ConnectionInfo[] }>;
export function controlRequest(socketPath: string, req: { cmd: 'initiate'; name: string; timeout?: number }, timeoutMs?: number): Promise<{ ok: true; initiated: InitiatedChild }>;
export function controlRequest(socketPath: string, req: { cmd: 'terminate'; name: string }, timeoutMs?: number): Promise<{ ok: true; terminated: string }>;
export function controlRequest(socketPath: string, req: { cmd: 'reload' }, timeoutMs?: number): Promise<{ ok: true; reload: ReloadReport }>;
export function controlRequest(socketPath: string, req: ControlRequest, timeoutMs = 5000): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socketPath);
    let buf = '';
    const fail = (e: ControlError) => {
      clearTimeout(timer);
      c.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new ControlError('TIMEOUT', `no answer from ${socketPath} in ${timeoutMs} ms`)), timeoutMs);
    c.setEncoding('utf8');
    c.once('connect', () => c.write(JSON.stringify(req) + '\n'));
    c.on('error', (e: NodeJS.ErrnoException) => {
      const none = e.code === 'ENOENT' || e.code === 'ECONNREFUSED';
      fail(new ControlError(none ? 'NO_GATEWAY' : 'PROTOCOL', none ? `no gateway running at ${socketPath}` : `${socketPath}: ${e.message}`));
    });
    c.on('data', (d: string) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i < 0) return;
      clearTimeout(timer);
      c.end();
      let r: ControlResponse;
      try {
        r = JSON.parse(buf.slice(0, i)) as ControlResponse;
      } catch {
        return reject(new ControlError('PROTOCOL', `${socketPath} answered something that is not JSON`));
      }
      if (!r.ok) return reject(new ControlError('PROTOCOL', `gateway refused: ${r.error}`));
      resolve(r);
    });
    c.on('close', () => fail(new ControlError('PROTOCOL', `${socketPath} closed the connection without an answer`)));
  });
}
