// Small process helpers shared by the interop harness: run a command to completion with a
// timeout (never throwing on a non-zero exit), wait for a child to exit, stop a child politely
// then firmly. Everything is by PID of processes the harness started itself.
import { spawn, type ChildProcess } from 'node:child_process';

export interface RunResult {
  /** exit code; null when killed by a signal or when the command could not be started */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** true when the timeout fired and the command was killed */
  timedOut: boolean;
  /** set when the command could not be started at all (ENOENT, EACCES, ...) */
  error?: string;
}

export interface RunOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  input?: string;
}

/** Runs `cmd args` to completion. Resolves (never rejects) with the exit status and output. */
export function runCommand(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const finish = (r: RunResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    child.on('error', (e) => finish({ code: null, signal: null, stdout, stderr, timedOut, error: e.message }));
    child.on('close', (code, signal) => finish({ code, signal, stdout, stderr, timedOut }));
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM means it exists but is not ours: it is alive
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Resolves true once the child has exited, false if it is still running after `ms`. */
export function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(t);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/**
 * Sends `signal`, waits up to `graceMs` for the exit, then SIGKILLs and waits again.
 * Resolves with the time it took. Safe to call on a child that already exited.
 */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 3000): Promise<number> {
  const t0 = performance.now();
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return 0;
  try {
    process.kill(child.pid, signal);
  } catch {
    /* already gone */
  }
  if (!(await waitExit(child, graceMs))) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* raced with its exit */
    }
    await waitExit(child, 5000);
  }
  return performance.now() - t0;
}

const cleanups = new Set<() => void>();
let hooksInstalled = false;

function runCleanups(): void {
  for (const fn of [...cleanups]) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      /* keep cleaning the rest */
    }
  }
}

/**
 * Runs `fn` (synchronously) when the process exits or gets SIGINT / SIGTERM / SIGHUP; for a signal
 * the signal is raised again afterwards, so the process still ends the way the sender asked.
 * Returns a function that unregisters it.
 */
export function registerCleanup(fn: () => void): () => void {
  cleanups.add(fn);
  if (!hooksInstalled) {
    hooksInstalled = true;
    process.on('exit', runCleanups);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      const handler = () => {
        runCleanups();
        process.off(sig, handler);
        process.kill(process.pid, sig);
      };
      process.on(sig, handler);
    }
  }
  return () => cleanups.delete(fn);
}
