// Notify payloads (RFC 2408 3.14) and the words for them: what every exchange sends when it refuses, and
// what it tells the user when the peer refuses. A leaf: the exchanges import it, it imports none of them.
import { NotifyType, PayloadType, type NotifyPayload } from '../isakmp/index.js';

export function notifyPayload(notifyType: number, protocolId: number, spi: Buffer, data: Buffer = Buffer.alloc(0)): NotifyPayload {
  return { type: PayloadType.NOTIFICATION, doi: 1, protocolId, notifyType, spi, data };
}

export function notifyName(n: number): string {
  for (const [k, v] of Object.entries(NotifyType)) if (v === n) return k;
  return `NOTIFY_${n}`;
}

/** The likely cause behind an error notify the peer sent during phase 1 (appended to the error sentence). */
export function phase1NotifyHint(n: number): string {
  switch (n) {
    case NotifyType.NO_PROPOSAL_CHOSEN:
      return ' (no matching phase 1 proposal, or no connection for us on the peer)';
    case NotifyType.INVALID_KEY_INFORMATION:
      return ' (strongSwan sends this when it has no pre-shared key for our address/ID)';
    case NotifyType.INVALID_HASH_INFORMATION:
    case NotifyType.AUTHENTICATION_FAILED:
      return ' (pre-shared key mismatch)';
    case NotifyType.INVALID_ID_INFORMATION:
      return ' (the peer does not accept our identity)';
    default:
      return '';
  }
}

/** The likely cause behind an error notify the peer sent in answer to our Quick Mode. */
export function quickModeNotifyHint(n: number): string {
  switch (n) {
    case NotifyType.NO_PROPOSAL_CHOSEN:
      return ' (no matching ESP proposal, PFS group, or mode)';
    case NotifyType.INVALID_ID_INFORMATION:
      return ' (traffic selectors not accepted)';
    default:
      return '';
  }
}
