// The local control socket of `ike gateway`: a unix socket, owner-only (mode 0600), speaking
// newline-delimited JSON. One request per line, one response per line:
//
//   {"cmd":"status"}  -> {"ok":true,"status":GatewayStatus}        (no key material)
//   {"cmd":"keylog"}  -> {"ok":true,"lines":[{"table","line"}...]}  (session keys of every current SA)
//   anything else     -> {"ok":false,"error":"..."}
//
// `keylog` hands out keys for all SAs, whatever the connections' `keylog` setting: whoever can open the
// socket is root or the gateway's own user, who could read the process memory anyway.
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { lstatSync, unlinkSync } from 'node:fs';
import type { Gateway, GatewayStatus } from './gateway.js';
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

/** root: /run/ikev1-engine.sock; others: $XDG_RUNTIME_DIR (a private per-user directory) or the temp dir. */
export function defaultControlPath(env: NodeJS.ProcessEnv = process.env): string {
  if (process.getuid?.() === 0) return path.join('/run', CONTROL_SOCKET_NAME);
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, CONTROL_SOCKET_NAME);
  return path.join(os.tmpdir(), `ikev1-engine-${process.getuid?.() ?? 'user'}.sock`);
}

export type ControlRequest = { cmd: 'status' } | { cmd: 'keylog' };
export type ControlResponse = { ok: true; status: GatewayStatus } | { ok: true; lines: KeylogLine[] } | { ok: false; error: string };

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
  static async listen(gateway: Gateway, socketPath: string): Promise<ControlServer> {
    await clearStale(socketPath);
    const server = net.createServer((c) => serve(gateway, c));
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

function serve(gateway: Gateway, c: net.Socket): void {
  let buf = '';
  c.setEncoding('utf8');
  c.on('error', () => undefined);
  c.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      c.write(JSON.stringify(answer(gateway, line)) + '\n');
    }
    if (buf.length > MAX_REQUEST) {
      c.end(JSON.stringify({ ok: false, error: 'request too long' }) + '\n');
      buf = '';
    }
  });
}

function answer(gateway: Gateway, line: string): ControlResponse {
  let req: unknown;
  try {
    req = JSON.parse(line);
  } catch {
    return { ok: false, error: 'requests are JSON objects, one per line' };
  }
  const cmd = typeof req === 'object' && req !== null ? (req as { cmd?: unknown }).cmd : undefined;
  switch (cmd) {
    case 'status':
      return { ok: true, status: gateway.status() };
    case 'keylog':
      return { ok: true, lines: gateway.keylogLines() };
    default:
      return { ok: false, error: `unknown cmd ${JSON.stringify(cmd)}; known: status, keylog` };
  }
}

/** One request to the gateway at `socketPath`. ControlError NO_GATEWAY when nothing listens there. */
export function controlRequest(socketPath: string, req: { cmd: 'status' }, timeoutMs?: number): Promise<{ ok: true; status: GatewayStatus }>;
export function controlRequest(socketPath: string, req: { cmd: 'keylog' }, timeoutMs?: number): Promise<{ ok: true; lines: KeylogLine[] }>;
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
