// Reloading a configuration into a running gateway (SIGHUP, `ike reload`): the difference between the
// connections it runs and those of the new file, and the list of connections an operator asks for
// (`ike list-conns`). The gateway applies the difference (gateway.ts, reload()); this room only decides it.
//
// A connection is the same when every value it was parsed into is the same, the secrets included (a new PSK
// or a changed XAUTH user file is a change): the comparison walks the parsed objects, since their JSON form
// redacts the keys. What cannot change while the sockets are bound (listen, dataplane) is reported, not applied.
import { createHash } from 'node:crypto';
import { idToString } from '../isakmp/index.js';
import type { ConnectionConfig, GatewayConfig } from './config.js';
import type { SaTable } from './sa-table.js';

export interface ReloadReport {
  added: string[];
  removed: string[];
  /** Changed connections: their SAs were deleted and, for `initiate: true`, set up again. */
  changed: string[];
  unchanged: string[];
  /** Top-level settings that differ but take a restart (the sockets and the TUN device stay as they are). */
  restartNeeded: string[];
  warnings: string[];
}

export interface ConnectionDiff {
  added: ConnectionConfig[];
  removed: ConnectionConfig[];
  changed: ConnectionConfig[];
  /** The connections to run from now on, in the new file's order; an unchanged one is the old object. */
  next: ConnectionConfig[];
  report: ReloadReport;
}

export function diffConfig(current: GatewayConfig, next: GatewayConfig): ConnectionDiff {
  const old = new Map(current.connections.map((c) => [c.name, c]));
  const names = new Set(next.connections.map((c) => c.name));
  const report: ReloadReport = { added: [], removed: [], changed: [], unchanged: [], restartNeeded: [], warnings: [...next.warnings] };
  const added: ConnectionConfig[] = [];
  const changed: ConnectionConfig[] = [];
  const running = next.connections.map((c) => {
    const was = old.get(c.name);
    if (was === undefined) {
      added.push(c);
      report.added.push(c.name);
      return c;
    }
    if (fingerprint(was) === fingerprint(c)) {
      report.unchanged.push(c.name);
      return was;
    }
    changed.push(c);
    report.changed.push(c.name);
    return c;
  });
  const removed = current.connections.filter((c) => !names.has(c.name));
  report.removed.push(...removed.map((c) => c.name));
  if (fingerprint(current.listen) !== fingerprint(next.listen)) report.restartNeeded.push('listen');
  if (fingerprint(current.dataplane ?? null) !== fingerprint(next.dataplane ?? null)) report.restartNeeded.push('dataplane');
  return { added, removed, changed, next: running, report };
}

/**
 * A digest of everything a parsed value holds: own enumerable properties in key order, buffers and maps by
 * content, functions left out (they are derived: a user file's verify). Never printed: it covers secrets.
 */
export function fingerprint(value: unknown): string {
  const h = createHash('sha256');
  walk(value, h, new Set());
  return h.digest('hex');
}

function walk(v: unknown, h: ReturnType<typeof createHash>, seen: Set<object>): void {
  if (v === null || v === undefined || typeof v !== 'object') {
    if (typeof v !== 'function') h.update(`${typeof v}:${String(v)};`);
    return;
  }
  if (seen.has(v)) return h.update('cycle;') as unknown as void;
  seen.add(v);
  if (Buffer.isBuffer(v)) h.update(`buf${v.length}:`).update(v);
  else if (v instanceof Map) {
    h.update('map{');
    for (const [k, x] of [...v.entries()].sort(([a], [b]) => (String(a) < String(b) ? -1 : 1))) {
      walk(k, h, seen);
      walk(x, h, seen);
    }
    h.update('}');
  } else if (Array.isArray(v)) {
    h.update('[');
    for (const x of v) walk(x, h, seen);
    h.update(']');
  } else {
    h.update('{');
    for (const k of Object.keys(v).sort()) {
      h.update(`${k}=`);
      walk((v as Record<string, unknown>)[k], h, seen);
    }
    h.update('}');
  }
  seen.delete(v);
}

/** What `ike list-conns` shows of one connection: its settings in brief and whether it is up. */
export interface ConnectionInfo {
  name: string;
  remote: string;
  mode: 'main' | 'aggressive';
  /** Started by us when the gateway starts (else it only answers). */
  initiate: boolean;
  /**
   * up: an established ISAKMP SA with a child SA; phase1-only: an ISAKMP SA without a child; connecting: an
   * exchange on its way; down: nothing; for a %any responder, `waiting` when nobody is connected.
   */
  state: 'up' | 'phase1-only' | 'connecting' | 'down' | 'waiting';
  isakmpSas: number;
  childSas: number;
  localTs: string[];
  remoteTs: string[];
}

export function connectionInfo(connections: readonly ConnectionConfig[], table: SaTable): ConnectionInfo[] {
  const counts = new Map<string, { halfOpen: number; up: number; children: number }>();
  for (const e of table.values()) {
    let n = counts.get(e.connection);
    if (n === undefined) counts.set(e.connection, (n = { halfOpen: 0, up: 0, children: 0 }));
    if (e.state === 'half-open') n.halfOpen++;
    else if (e.state === 'established') {
      n.up++;
      n.children += e.children.filter((c) => !c.rekeyed).length;
    }
  }
  return connections.map((c) => {
    const n = counts.get(c.name) ?? { halfOpen: 0, up: 0, children: 0 };
    const state: ConnectionInfo['state'] =
      n.children > 0 ? 'up' : n.up > 0 ? 'phase1-only' : n.halfOpen > 0 ? 'connecting' : c.remote === '%any' ? 'waiting' : 'down';
    const ts = (t: ConnectionConfig['localTs']) => (t === 'dynamic' ? ['dynamic'] : t.map(idToString));
    return { name: c.name, remote: c.remote, mode: c.mode, initiate: c.initiate, state, isakmpSas: n.up, childSas: n.children, localTs: ts(c.localTs), remoteTs: ts(c.remoteTs) };
  });
}
