// What the exchanges hand to each other and to the gateway: an established ISAKMP SA, a negotiated child SA,
// their keys and endpoints. A leaf module (DESIGN.md): it imports nothing of the exchanges, so Phase 1,
// Quick Mode, Informational and the retained (compact) forms all depend on it and never on each other for
// their shared vocabulary.
import type { DhGroupId } from '../crypto/index.js';
import type { EspAlgorithm } from '../esp/index.js';
import type { Identity } from '../isakmp/index.js';
import type { IkeProposal } from './proposals.js';
import type { TrafficSelector } from './traffic-selectors.js';
import type { PeerVendorIds } from './vendor.js';

export interface Endpoint {
  address: string;
  port: number;
}

/** NAT detection from NAT-D (RFC 3947 section 3.2). */
export interface NatState {
  // With a NAT on either side, IKE moves to the NAT-T port from the initiator's next message on and ESP
  // travels in UDP (RFC 3948). The gateway does the move; see natFloat().
  /** The peer negotiated NAT-T (which flavour). */
  version: 'rfc3947' | 'draft' | null;
  /** Our address/port as the peer saw it differs from ours: we are behind a NAT. */
  localBehindNat: boolean;
  /** The peer's address/port differs from what it hashed: the peer is behind a NAT (or it forces encapsulation). */
  remoteBehindNat: boolean;
  /**
   * We force UDP encapsulation (`encap: true`): our NAT-D for ourselves is deliberately wrong so that the peer
   * sees a NAT, but no NAT is claimed on our side (absent when not forced).
   */
  encapForced?: true;
}

/** Should IKE move to the NAT-T port? (a NAT-T capable peer and a NAT on either side, or forced encapsulation) */
export function natFloat(nat: NatState): boolean {
  return nat.version !== null && (nat.localBehindNat || nat.remoteBehindNat || nat.encapForced === true);
}

/** An established ISAKMP SA: everything phase 2 and informational exchanges need. */
export interface IsakmpSa {
  name: string;
  initiator: boolean;
  mode: 'main' | 'aggressive';
  cookieI: Buffer;
  cookieR: Buffer;
  local: Endpoint;
  remote: Endpoint;
  localId: Identity;
  remoteId: Identity;
  proposal: IkeProposal;
  /** strongSwan-style name of the algorithms: aes128-sha1-modp2048 */
  algorithms: string;
  skeyidD: Buffer;
  skeyidA: Buffer;
  skeyidE: Buffer;
  /** The cipher key Ka derived from SKEYID_e. */
  encryptionKey: Buffer;
  /** Last CBC block of phase 1: the seed of every phase 2 / informational IV. */
  lastIv: Buffer;
  nat: NatState;
  peerVendorIds: PeerVendorIds;
  establishedAt: number;
  expiresAt: number;
}

/** The parts of an ISAKMP SA a phase 2 exchange uses (IsakmpSa satisfies it). */
export type Phase2Keys = Pick<IsakmpSa, 'cookieI' | 'cookieR' | 'skeyidA' | 'skeyidD' | 'encryptionKey' | 'lastIv' | 'proposal'>;

/** The line Wireshark's "IKEv1 Decryption Table" takes: initiator cookie, encryption key. */
export function ikev1KeylogLine(sa: Pick<IsakmpSa, 'cookieI' | 'encryptionKey'>): string {
  return `${sa.cookieI.toString('hex')},${sa.encryptionKey.toString('hex')}`;
}

export interface EspKeys {
  encryptionKey: Buffer;
  integrityKey: Buffer;
  salt: Buffer;
}

/** A negotiated pair of ESP SAs, ready for createEspSa (see espSaParams). */
export interface ChildSa {
  name: string;
  messageId: number;
  initiator: boolean;
  /** SPI of the SA we receive on (we chose it), and of the SA we send on (the peer chose it). */
  spiIn: Buffer;
  spiOut: Buffer;
  /** ESP keyword as ts/esp takes it: 'aes128-sha1', 'aes128gcm16', 'chacha20poly1305'. */
  algorithm: EspAlgorithm;
  /** strongSwan-style name with PFS group and ESN: 'aes128-sha1-modp2048'. */
  proposal: string;
  mode: 'tunnel' | 'transport';
  /** ESP in UDP (RFC 3948), because NAT-T negotiated a UDP encapsulation mode. */
  encapsulation: boolean;
  inbound: EspKeys;
  outbound: EspKeys;
  localTs: TrafficSelector;
  remoteTs: TrafficSelector;
  lifetimeSeconds: number;
  lifetimeKilobytes?: number;
  /**
   * Responder only: the peer offered a longer lifetime than ours and got RESPONDER-LIFETIME. A peer that
   * ignores it (many do) would let the child expire under it, so the side with the shorter lifetime rekeys.
   */
  shorterThanPeer?: true;
  pfsGroup?: DhGroupId;
  esn: boolean;
  establishedAt: number;
  expiresAt: number;
  /**
   * Transport mode in UDP: the original addresses the peer sent (RFC 3947 NAT-OA; the draft's carries the
   * initiator's only), for the TCP / UDP checksum fix-up of RFC 3948 3.1.2.
   */
  natOa?: { initiator: string; responder?: string };
}
