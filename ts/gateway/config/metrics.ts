// The "metrics" section: where the Prometheus endpoint listens (ts/gateway/metrics.ts).
//   "metrics": { "listen": "127.0.0.1:9464" }      ([::1]:9464 for IPv6; port 0 = any free port)
import { checkKeys, got, object, string, type Problems } from './check.js';
import { parseAddress } from './values.js';

export interface MetricsConfig {
  address: string;
  port: number;
}

export const METRICS_KEYS = ['listen'];

export function parseMetrics(p: Problems, v: unknown): MetricsConfig | undefined {
  if (v === undefined) return undefined;
  const o = object(p, 'metrics', v);
  if (!o) return undefined;
  checkKeys(p, 'metrics', o, METRICS_KEYS);
  const s = string(p, 'metrics.listen', o.listen ?? '127.0.0.1:9464');
  if (s === undefined) return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  const address = m ? parseAddress(m[1] ?? m[2]!) : null;
  const port = m ? Number(m[3]) : NaN;
  if (!address || !(port >= 0 && port <= 65535)) {
    return p.error('metrics.listen', `must be ADDRESS:PORT such as 127.0.0.1:9464 or [::1]:9464, ${got(s)}`);
  }
  return { address: address.text, port };
}
