// `closeAction` and `dpd.action` of a connection: what the gateway does when the peer closes a connection or
// stops answering, after swanctl's close_action / dpd_action, reduced to what this engine can do.
//   closeAction  'none' (default): a child or ISAKMP SA the peer deleted stays down.
//                'restart': when the peer deletes the connection's last child SA (or its ISAKMP SA with it), the
//                gateway brings the connection up again at once: Quick Mode on a live ISAKMP SA, else phase 1.
//                A Delete that only ends a replaced SA (a rekey) leaves a live child and restarts nothing.
//   dpd.action   'clear' (default): a dead peer's SAs are removed. 'restart': removed, then the connection is
//                initiated again. swanctl's 'trap' / 'hold' (a trap policy that waits for traffic) needs kernel
//                policies this engine does not install, so it is refused rather than taken as 'clear'.
// Both restarts need a peer address: a connection with remote "%any" cannot use them.
//   unique       'no' (default): IKEv1 re-keys phase 1 by a new ISAKMP SA, so a new one with the same connection,
//                peer address and identity takes over the children of the older ones (which then go), and an
//                INITIAL-CONTACT from the peer removes its older SAs (RFC 2407 4.6.3.3).
//                'never': every ISAKMP SA the peer sets up stands alone, as with strongSwan's unique = never (our
//                own phase 1 re-keys still move the children of the SAs we started): no adoption, no
//                replacement of children across ISAKMP SAs, INITIAL-CONTACT removes nothing. For peers that
//                keep parallel SAs on purpose (load testers, several clients sharing one identity).
import { closest, got, type Problems } from './check.js';

export type CloseAction = 'none' | 'restart';
export type DpdAction = 'clear' | 'restart';
export type Unique = 'no' | 'never';

const TRAP = ['hold', 'trap'];

function action<T extends string>(p: Problems, at: string, v: unknown, choices: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  if (typeof v === 'string' && (choices as readonly string[]).includes(v)) return v as T;
  const list = choices.map((c) => `'${c}'`).join(', ');
  if (typeof v === 'string' && TRAP.includes(v)) {
    return p.error(at, `must be one of ${list}: '${v}' needs trap policies in the kernel, which this engine does not install`) ?? fallback;
  }
  const hint = typeof v === 'string' ? closest(v, choices) : undefined;
  return p.error(at, `must be one of ${list}, ${got(v)}${hint ? ` (did you mean '${hint}'?)` : ''}`) ?? fallback;
}

export function parseCloseAction(p: Problems, at: string, v: unknown): CloseAction {
  return action(p, at, v, ['none', 'restart'] as const, 'none');
}

export function parseDpdAction(p: Problems, at: string, v: unknown): DpdAction {
  return action(p, at, v, ['clear', 'restart'] as const, 'clear');
}

export function parseUnique(p: Problems, at: string, v: unknown): Unique {
  return action(p, at, v, ['no', 'never'] as const, 'no');
}

/** A restart needs somewhere to go. */
export function checkActions(p: Problems, at: string, remote: string | undefined, closeAction: CloseAction, dpdAction: DpdAction): void {
  if (remote !== '%any') return;
  if (closeAction === 'restart') p.error(`${at}.closeAction`, 'cannot restart a connection with remote "%any"; give the peer\'s address or use \'none\'');
  if (dpdAction === 'restart') p.error(`${at}.dpd.action`, 'cannot restart a connection with remote "%any"; give the peer\'s address or use \'clear\'');
}
