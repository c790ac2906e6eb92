// The config's `limits` section: message 1 admission (half-open limits, busy mode) and the error-event
// limits. Everything optional; the defaults are admission.ts's and error-summary.ts's.
//   "limits": { "halfOpen": 10000, "halfOpenPerPeer": 1000, "busyThreshold": 5000, "busyHalfOpenPerPeer": 2,
//               "busyNewPerSecond": 2000, "busyAggressivePerSecond": 20, "recentSeconds": "1h",
//               "errors": { "perSource": 3, "perKind": 20, "window": "60s" } }
import type { AdmissionLimits } from '../admission.js';
import type { ErrorLimits } from '../error-summary.js';
import { checkKeys, got, integer, object, type Problems } from './check.js';
import { parseDuration } from './values.js';

export interface LimitsConfig {
  admission: Partial<AdmissionLimits>;
  errors: Partial<ErrorLimits>;
}

export const LIMITS_KEYS = ['halfOpen', 'halfOpenPerPeer', 'busyThreshold', 'busyHalfOpenPerPeer', 'busyNewPerSecond', 'busyAggressivePerSecond', 'recentSeconds', 'errors', '_comment'];
export const LIMITS_ERROR_KEYS = ['perSource', 'perKind', 'window', '_comment'];
const BIG = 10_000_000;

export function parseLimits(p: Problems, v: unknown): LimitsConfig | undefined {
  if (v === undefined) return undefined;
  const o = object(p, 'limits', v);
  if (!o) return undefined;
  checkKeys(p, 'limits', o, LIMITS_KEYS);
  const admission: Partial<AdmissionLimits> = {};
  const int = (key: string, min: number) => (o[key] === undefined ? undefined : integer(p, `limits.${key}`, o[key], min, BIG, 0));
  const set = <K extends keyof AdmissionLimits>(k: K, value: number | undefined) => {
    if (value !== undefined) admission[k] = value as AdmissionLimits[K];
  };
  set('maxHalfOpen', int('halfOpen', 1));
  set('maxHalfOpenPerPeer', int('halfOpenPerPeer', 1));
  set('busyThreshold', int('busyThreshold', 0));
  set('busyHalfOpenPerPeer', int('busyHalfOpenPerPeer', 1));
  set('busyNewPerSecond', int('busyNewPerSecond', 0));
  set('busyAggressivePerSecond', int('busyAggressivePerSecond', 0));
  set('recentSeconds', seconds(p, 'limits.recentSeconds', o.recentSeconds));
  const errors: Partial<ErrorLimits> = {};
  if (o.errors !== undefined) {
    const e = object(p, 'limits.errors', o.errors);
    if (e) {
      checkKeys(p, 'limits.errors', e, LIMITS_ERROR_KEYS);
      if (e.perSource !== undefined) errors.perSource = integer(p, 'limits.errors.perSource', e.perSource, 0, BIG, 0);
      if (e.perKind !== undefined) errors.perKind = integer(p, 'limits.errors.perKind', e.perKind, 0, BIG, 0);
      const w = seconds(p, 'limits.errors.window', e.window);
      if (w !== undefined) errors.windowMs = w * 1000;
    }
  }
  return { admission, errors };
}

function seconds(p: Problems, at: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const d = parseDuration(v);
  if (!d.ok) return p.error(at, d.error) ?? undefined;
  if (d.value <= 0) return p.error(at, `must be more than 0s, ${got(v)}`) ?? undefined;
  return d.value;
}
