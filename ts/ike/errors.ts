// Negotiation failures as values: a kind an operator can grep for, the notify we send (if any), and a
// sentence that says the cause in the words an operator would use.
import { NotifyType } from '../isakmp/index.js';

export type IkeErrorKind =
  | 'NO_PROPOSAL_CHOSEN' // no common phase 1 / phase 2 proposal
  | 'NO_PSK' // no pre-shared key configured for the peer
  | 'PSK_MISMATCH' // message 5/6 (or the AM hash) does not decrypt or verify: the two keys differ
  | 'AUTHENTICATION_FAILED' // the peer's identity is not the one configured, or its signature does not verify
  | 'CERTIFICATE' // the peer's certificate is malformed, untrusted, expired, revoked or not for its identity
  | 'INVALID_KE' // the peer's DH public value is out of range / not on the curve
  | 'TIMEOUT' // no answer after all retransmissions: peer unreachable or silently dropping
  | 'PAYLOAD_MALFORMED' // a message that does not parse, or misses a payload the exchange needs
  | 'POLICY' // refused by local policy (aggressive mode PSK not enabled, weak algorithm, ...)
  | 'PEER_NOTIFY' // the peer sent an error notify
  | 'INTERNAL';

export class IkeError extends Error {
  override name = 'IkeError';
  constructor(
    readonly kind: IkeErrorKind,
    message: string,
    /** The notify message type sent to the peer for this failure, if one is sent. */
    readonly notifyType?: number,
  ) {
    super(message);
  }
}

/** A caught value as an IkeError: itself, or an INTERNAL error saying what was thrown (a bug, not the peer). */
export function asIkeError(e: unknown): IkeError {
  if (e instanceof IkeError) return e;
  return new IkeError('INTERNAL', `internal error: ${(e as Error)?.message ?? String(e)}`);
}

/** The Notify type RFC 2408/2409 prescribe for a failure kind (undefined: nothing is sent). */
export function notifyFor(kind: IkeErrorKind): number | undefined {
  switch (kind) {
    case 'NO_PROPOSAL_CHOSEN':
      return NotifyType.NO_PROPOSAL_CHOSEN;
    case 'INVALID_KE':
      return NotifyType.INVALID_KEY_INFORMATION;
    case 'PSK_MISMATCH':
      return NotifyType.INVALID_HASH_INFORMATION;
    case 'AUTHENTICATION_FAILED':
      return NotifyType.AUTHENTICATION_FAILED;
    case 'CERTIFICATE':
      return NotifyType.INVALID_CERTIFICATE;
    case 'PAYLOAD_MALFORMED':
      return NotifyType.PAYLOAD_MALFORMED;
    case 'POLICY':
      return NotifyType.NO_PROPOSAL_CHOSEN;
    default:
      return undefined;
  }
}
