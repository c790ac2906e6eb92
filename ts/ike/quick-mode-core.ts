// What the Quick Mode exchanges share (quick-mode.ts holds the exchange and its steps): the child policy,
// what an exchange needs from its ISAKMP SA, the child SA and its KEYMAT from what both sides agreed, and
// the responder's reading of QM1 (selectors, the child it matches, the lifetime to answer).
import type { CryptoProvider, DhGroupId, DhPrivateKey } from '../crypto/index.js';
import { createEspSa, espKeyLengths, espKeymatViews, isEspAlgorithm, type EspAlgorithm, type EspSa, type EspSaParams } from '../esp/index.js';
import { decodeIdentity, encodeIdentity, NotifyType, PayloadType, ProtocolId, findPayload, findPayloads, type IdPayload, type NatOaPayload, type Payload, type SaPayload } from '../isakmp/index.js';
import { IkeError } from './errors.js';
import { espProposalName, type EspProposal } from './esp-proposals.js';
import { decodeEncapsulationMode, describeEspOffer, espTransformValue, selectEsp, DEFAULT_IPSEC_LIFETIME_SECONDS } from './esp-sa-payload.js';
import type { openProtected } from './phase2-crypto.js';
import type { SelectionOrder } from './proposals.js';
import type { RetransmitPolicy } from './retransmit.js';
import type { ChildSa, EspKeys, IsakmpSa } from './sa-types.js';
import { hostSelector, tsContains, tsFromIdPayload, tsToString, type TrafficSelector } from './traffic-selectors.js';

/** One CHILD_SA configuration (strongSwan's `children { name { ... } }`). */
export interface Phase2Policy {
  name: string;
  /** ESP proposals in priority order (parseEspProposal). A pfsGroup means PFS with that group. */
  proposals: EspProposal[];
  mode?: 'tunnel' | 'transport';
  /** Our side / the peer's side. Omitted: the endpoint address (and, as initiator, no ID payloads are sent). */
  localTs?: TrafficSelector;
  remoteTs?: TrafficSelector;
  /** Initiator: the lifetime offered. Responder: the longest accepted (a longer offer gets RESPONDER-LIFETIME). Default 3600. */
  lifetimeSeconds?: number;
  lifetimeKilobytes?: number;
  /** Responder: whose priority decides (default 'responder'). */
  selection?: SelectionOrder;
  retransmit?: RetransmitPolicy;
  /** Propose UDP encapsulation when NAT-T was negotiated even if no NAT was detected (strongSwan `encap = yes`). */
  forceEncapsulation?: boolean;
  /** Run PFS DH on the libuv thread pool. */
  asyncDh?: boolean;
}

export const DEFAULT_CHILD_LIFETIME_SECONDS = 3600;

export type { ChildSa, EspKeys } from './sa-types.js';

/** createEspSa parameters for one direction of a child SA (extra: replayWindow, implementation, ...). */
export function espSaParams(child: ChildSa, direction: 'inbound' | 'outbound', extra: Partial<EspSaParams> = {}): EspSaParams {
  const k = direction === 'inbound' ? child.inbound : child.outbound;
  return {
    spi: (direction === 'inbound' ? child.spiIn : child.spiOut).readUInt32BE(0),
    algorithm: child.algorithm,
    direction,
    encryptionKey: k.encryptionKey,
    integrityKey: k.integrityKey,
    salt: k.salt,
    esn: child.esn,
    mode: child.mode,
    udpEncapsulation: child.encapsulation,
    ...extra };
}

/** Both ESP SAs of a child: { inbound, outbound }. */
export function createChildEspSas(child: ChildSa, extra: Partial<EspSaParams> = {}): { inbound: EspSa; outbound: EspSa } {
  return { inbound: createEspSa(espSaParams(child, 'inbound', extra)), outbound: createEspSa(espSaParams(child, 'outbound', extra)) };
}

/** What a Quick Mode exchange needs from its ISAKMP SA (IsakmpSaContext provides it). */
export interface Phase2Host {
  readonly crypto: CryptoProvider;
  readonly sa: IsakmpSa;
  /** A random non-zero message ID not used before on this ISAKMP SA. */
  newMessageId(): number;
}

export interface QuickModeOutput {
  send: Buffer[];
  timer: number | null;
  childSa?: ChildSa;
  /**
   * Responder, on sending QM2: the child SA as it will be (keys, SPIs), before QM3 confirms it. The
   * initiator may send on it as soon as QM2 arrives, before its QM3 reaches us, so the inbound direction
   * should take packets from now on; the outbound waits for `childSa` (same object) after QM3.
   */
  inboundReady?: ChildSa;
  failed?: IkeError;
  /** Why an incoming datagram changed nothing (for logs); never set together with a state change. */
  dropped?: string;
  /** The datagram repeated one already handled: answered from the cache, nothing else changed. */
  repeat?: boolean;
}

export const NONCE_LENGTH = 32;
export const SIT_IDENTITY_ONLY = Buffer.from([0, 0, 0, 1]);

/** What every step of one Quick Mode knows. */
export interface QmCommon {
  readonly host: Phase2Host;
  readonly policy: Phase2Policy;
  readonly messageId: number;
  /** Our SPI: the SA we receive on. */
  readonly spiOurs: Buffer;
}

/** The authenticated content of a message of this exchange (openProtected, HASH not yet checked). */
export type Opened = Extract<ReturnType<typeof openProtected>, { ok: true }>;

/** What a waiting state answers: a rejected message (nothing changed), or the next state and what to send. */
export type Step<S> = { dropped: string } | { next: S; send?: Buffer };

/** What a Quick Mode agreed on, from which the child SA and its keys follow. */
export interface Agreed {
  chosen: EspProposal;
  spiPeer: Buffer;
  nonceI: Buffer;
  nonceR: Buffer;
  gxy?: Buffer;
  mode: 'tunnel' | 'transport';
  udp: boolean;
  localTs: TrafficSelector;
  remoteTs: TrafficSelector;
  lifetimeSeconds: number;
  lifetimeKilobytes: number | undefined;
  /** The peer's NAT-OA payloads (transport mode in UDP), if it sent any. */
  natOa?: ChildSa['natOa'];
}

/** The child SA an exchange agreed on (keys derived now). */
export function childSa(c: QmCommon, initiator: boolean, now: number, a: Agreed): ChildSa {
  const alg = a.chosen.algorithm as EspAlgorithm;
  const keys = deriveChildKeys(c.host.crypto, c.host.sa, alg, {
    spiIn: c.spiOurs,
    spiOut: a.spiPeer,
    nonceI: a.nonceI,
    nonceR: a.nonceR,
    ...(a.gxy ? { gxy: a.gxy } : {}) });
  const child: ChildSa = {
    name: c.policy.name,
    messageId: c.messageId,
    initiator,
    spiIn: c.spiOurs,
    spiOut: a.spiPeer,
    algorithm: alg,
    proposal: espProposalName(a.chosen),
    mode: a.mode,
    encapsulation: a.udp,
    inbound: keys.inbound,
    outbound: keys.outbound,
    localTs: a.localTs,
    remoteTs: a.remoteTs,
    lifetimeSeconds: a.lifetimeSeconds,
    esn: a.chosen.esn,
    establishedAt: now,
    expiresAt: now + a.lifetimeSeconds * 1000 };
  if (a.lifetimeKilobytes !== undefined) child.lifetimeKilobytes = a.lifetimeKilobytes;
  if (a.chosen.pfsGroup !== undefined) child.pfsGroup = a.chosen.pfsGroup;
  if (a.natOa !== undefined) child.natOa = a.natOa;
  return child;
}

/**
 * RFC 3947 5.2: in transport mode over UDP, QM1 and QM2 carry the original addresses, NAT-OAi (the
 * initiator's) then NAT-OAr (the responder's), each as its sender knows it: its own address, and the peer's as
 * it sees it. A receiver behind or facing a NAT fixes up TCP / UDP checksums with them (RFC 3948 3.1.2). The
 * draft version (payload 131) carries the initiator's alone. None in tunnel mode or without UDP.
 */
export function natOaPayloads(sa: Pick<IsakmpSa, 'local' | 'remote' | 'nat'>, initiator: boolean, mode: 'tunnel' | 'transport', udp: boolean): Payload[] {
  if (mode !== 'transport' || !udp || sa.nat.version === null) return [];
  const [oaI, oaR] = initiator ? [sa.local.address, sa.remote.address] : [sa.remote.address, sa.local.address];
  const oa = (address: string, type: 21 | 131): NatOaPayload => {
    const { idType, data } = encodeIdentity(address.includes(':') ? { kind: 'ipv6', address } : { kind: 'ipv4', address });
    return { type, idType, data };
  };
  return sa.nat.version === 'rfc3947' ? [oa(oaI, PayloadType.NAT_OA), oa(oaR, PayloadType.NAT_OA)] : [oa(oaI, PayloadType.NAT_OA_DRAFT)];
}

/** The NAT-OA payloads of a QM1 / QM2 (RFC 3947 or the draft's), in order: NAT-OAi, NAT-OAr; undefined if none. */
export function natOaOf(rest: readonly Payload[], where: string): ChildSa['natOa'] {
  const found = rest.filter((p): p is NatOaPayload => p.type === PayloadType.NAT_OA || p.type === PayloadType.NAT_OA_DRAFT);
  if (found.length === 0) return undefined;
  const address = (p: NatOaPayload) => {
    const id = decodeIdentity(p.idType, p.data);
    if (!id.ok || (id.value.kind !== 'ipv4' && id.value.kind !== 'ipv6')) {
      throw new IkeError('PAYLOAD_MALFORMED', `${where}: a NAT-OA payload must hold one IPv4 or IPv6 address`, NotifyType.PAYLOAD_MALFORMED);
    }
    return id.value.address;
  };
  const [i, r] = found;
  return { initiator: address(i!), ...(r !== undefined ? { responder: address(r) } : {}) };
}

export function makeKeyPair(crypto: CryptoProvider, policy: Phase2Policy, group: DhGroupId): DhPrivateKey | Promise<DhPrivateKey> {
  const g = crypto.dhGroup(group);
  return policy.asyncDh ? g.generateKeyPairAsync() : g.generateKeyPair();
}

/** g(qm)^xy for PFS (a promise only with asyncDh). */
export async function computeGxy(crypto: CryptoProvider, policy: Phase2Policy, dh: DhPrivateKey, peer: Buffer, where: string): Promise<Buffer> {
  const g = crypto.dhGroup(dh.group);
  if (peer.length !== g.publicLength) throw new IkeError('INVALID_KE', `${where}: KE payload of ${peer.length} bytes, DH group ${g.id} needs ${g.publicLength}`);
  try {
    return policy.asyncDh ? await dh.computeSecretAsync(peer) : dh.computeSecret(peer);
  } catch (e) {
    throw new IkeError('INVALID_KE', `${where}: invalid DH public value (${(e as Error).message})`);
  }
}

/**
 * ESP keys of both directions (RFC 2409 5.5): KEYMAT = prf(SKEYID_d, [g(qm)^xy |] 3 | SPI | Ni_b | Nr_b)
 * expanded to the transform's key material, where SPI is the SPI of the SA the keys protect: ours (the
 * receiver's choice) for inbound, the peer's for outbound. Split as encryption key | salt | integrity key.
 */
export function deriveChildKeys(
  crypto: CryptoProvider,
  sa: Pick<IsakmpSa, 'skeyidD' | 'proposal'>,
  algorithm: EspAlgorithm,
  p: { spiIn: Buffer; spiOut: Buffer; nonceI: Buffer; nonceR: Buffer; gxy?: Buffer },
): { inbound: EspKeys; outbound: EspKeys } {
  const len = espKeyLengths(algorithm).keymatLength;
  // Both directions' keys in one pool slice, handed out as views: one allocation instead of six copies. What
  // a gateway keeps for the SA's life goes into an allocation of its own (retainChildSa in retained.ts).
  const all = Buffer.allocUnsafe(2 * len);
  const keys = (spi: Buffer, o: number): EspKeys => {
    const params = { protocol: ProtocolId.IPSEC_ESP, spi, nonceI: p.nonceI, nonceR: p.nonceR, ...(p.gxy ? { gxy: p.gxy } : {}) };
    const km = crypto.keymat(sa.proposal.hash, sa.skeyidD, params, len);
    km.copy(all, o);
    km.fill(0);
    return espKeymatViews(algorithm, all.subarray(o, o + len));
  };
  return { inbound: keys(p.spiIn, 0), outbound: keys(p.spiOut, len) };
}

export function randomSpi(crypto: CryptoProvider): Buffer {
  // SPIs 0..255 are reserved (RFC 4303 2.1).
  for (;;) {
    const spi = crypto.randomBytes(4);
    if (spi.readUInt32BE(0) >= 256) return spi;
  }
}

export function checkNonce(rest: readonly Payload[], where: string): Buffer {
  const n = findPayload(rest, PayloadType.NONCE);
  if (n === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where} has no NONCE payload`);
  if (n.data.length < 8 || n.data.length > 256) throw new IkeError('PAYLOAD_MALFORMED', `${where}: nonce of ${n.data.length} bytes (RFC 2409 allows 8-256)`);
  return Buffer.from(n.data);
}

/** An offered encapsulation mode is acceptable when it is our mode, in UDP only if NAT-T was negotiated. */
export function modeAcceptable(value: number | undefined, mode: 'tunnel' | 'transport', natt: boolean): boolean {
  if (value === undefined) return true; // RFC 2407 4.5: unspecified, host-dependent: ours
  const d = decodeEncapsulationMode(value);
  return d !== null && d.mode === mode && (!d.udp || natt);
}

/** The most useful reason we can give for "no proposal chosen", including PFS mismatches. */
export function noProposal(where: string, saP: SaPayload, candidates: readonly Phase2Policy[], keSent: boolean): IkeError {
  const offer = describeEspOffer(saP.proposals);
  // what we can actually accept: a proposal the ESP data path lacks (only in a policy built by hand; the config
  // refuses them) is counted apart, so the message never says we accept what we just refused
  const all = candidates.flatMap((p) => p.proposals);
  const ours = all.filter((p) => isEspAlgorithm(p.algorithm));
  const unsupported = all.length - ours.length;
  const names = ours.map(espProposalName).join(', ') + (unsupported > 0 ? ` (+${unsupported} not supported by the ESP data path)` : '');
  const ourGroups = new Set(ours.map((p) => p.pfsGroup));
  const offeredGroups = new Set(saP.proposals.flatMap((p) => p.transforms.map((t) => espTransformValue(t).group)));
  let pfs = '';
  if (!keSent && ![...ourGroups].includes(undefined)) pfs = ' (PFS mismatch: we require PFS, the peer offered none)';
  else if (keSent && !ourGroups.has(undefined) && ![...offeredGroups].some((g) => ourGroups.has(g as DhGroupId))) pfs = ' (PFS mismatch: different DH groups)';
  else if (keSent && ourGroups.size === 1 && ourGroups.has(undefined)) pfs = ' (PFS mismatch: the peer wants PFS, we do not use it)';
  return new IkeError('NO_PROPOSAL_CHOSEN', `${where}: no matching ESP proposal${pfs}: peer offered ${offer}; we accept ${names || 'nothing'}`);
}

export function idCopy(p: IdPayload): IdPayload {
  return { type: PayloadType.ID, idType: p.idType, protocolId: p.protocolId, port: p.port, data: Buffer.from(p.data) };
}

/**
 * Responder with PFS: our key pair and g(qm)^xy with the initiator's value. With asyncDh both are made in one
 * trip to the thread pool (the initiator's value is known before ours is made).
 */
export async function responderGxy(crypto: CryptoProvider, policy: Phase2Policy, group: DhGroupId, peer: Buffer, where: string): Promise<{ publicValue: Buffer; gxy: Buffer }> {
  const g = crypto.dhGroup(group);
  if (!policy.asyncDh) {
    const dh = g.generateKeyPair();
    return { publicValue: dh.publicValue, gxy: await computeGxy(crypto, policy, dh, peer, where) };
  }
  if (peer.length !== g.publicLength) throw new IkeError('INVALID_KE', `${where}: KE payload of ${peer.length} bytes, DH group ${g.id} needs ${g.publicLength}`);
  try {
    const { key, secret } = await g.generateAndComputeAsync(peer);
    return { publicValue: key.publicValue, gxy: secret };
  } catch (e) {
    throw new IkeError('INVALID_KE', `${where}: invalid DH public value (${(e as Error).message})`);
  }
}

/** QM1's selectors: IDci / IDcr, or when both are omitted the two endpoints (RFC 2409 5.5). */
export function qm1Selectors(rest: readonly Payload[], sa: IsakmpSa, where: string): { ids: IdPayload[]; peerTs: TrafficSelector; ourTs: TrafficSelector } {
  const ids = findPayloads(rest, PayloadType.ID);
  if (ids.length === 0) return { ids, peerTs: hostSelector(sa.remote.address), ourTs: hostSelector(sa.local.address) };
  if (ids.length !== 2) throw new IkeError('PAYLOAD_MALFORMED', `${where}: ${ids.length} ID payloads (0 or 2 expected)`, NotifyType.INVALID_ID_INFORMATION);
  const peerTs = tsFromIdPayload(ids[0]!);
  const ourTs = tsFromIdPayload(ids[1]!);
  if (peerTs === null || ourTs === null) throw new IkeError('POLICY', `${where}: IDci/IDcr are not address selectors`, NotifyType.INVALID_ID_INFORMATION);
  return { ids, peerTs, ourTs };
}

/**
 * The first configured child whose selectors contain the proposed ones (a child without selectors stands for
 * the endpoint's own address) and of whose proposals the initiator offered one, with that choice.
 */
export function chooseChild(
  policies: readonly Phase2Policy[],
  saP: SaPayload,
  ts: { peerTs: TrafficSelector; ourTs: TrafficSelector },
  sa: IsakmpSa,
  where: string,
  keSent: boolean,
): { policy: Phase2Policy; choice: NonNullable<ReturnType<typeof selectEsp>>; peerTs: TrafficSelector; ourTs: TrafficSelector; narrowed: boolean } {
  const remoteHost = hostSelector(sa.remote.address);
  const localHost = hostSelector(sa.local.address);
  const seen = (p: Phase2Policy) => {
    const peerTs = narrow(p.remoteTs ?? remoteHost, behindNat(p, ts.peerTs, sa, 'remote'));
    const ourTs = narrow(p.localTs ?? localHost, behindNat(p, ts.ourTs, sa, 'local'));
    return peerTs && ourTs ? { peerTs, ourTs, narrowed: peerTs !== ts.peerTs || ourTs !== ts.ourTs } : null;
  };
  // the policies whose selectors hold the proposal first, then those that narrow it
  const fits = policies.flatMap((policy) => {
    const s = seen(policy);
    return s ? [{ policy, ...s }] : [];
  });
  const candidates = [...fits.filter((f) => !f.narrowed), ...fits.filter((f) => f.narrowed)];
  if (candidates.length === 0) {
    const allowed = policies.map((p) => `${tsToString(p.remoteTs ?? remoteHost)} <=> ${tsToString(p.localTs ?? localHost)}`).join(', ') || 'nothing (no child configured)';
    throw new IkeError('POLICY', `traffic selectors do not match: peer proposed ${tsToString(ts.peerTs)} <=> ${tsToString(ts.ourTs)}, we allow ${allowed}`, NotifyType.INVALID_ID_INFORMATION);
  }
  for (const { policy, peerTs, ourTs, narrowed } of candidates) {
    const supported = policy.proposals.filter((x) => isEspAlgorithm(x.algorithm));
    const mode = policy.mode ?? 'tunnel';
    const choice = selectEsp(saP.proposals, supported, policy.selection ?? 'responder', (m) => modeAcceptable(m, mode, sa.nat.version !== null));
    if (choice) return { policy, choice, peerTs, ourTs, narrowed };
  }
  throw noProposal(where, saP, candidates.map((c) => c.policy), keSent);
}

/**
 * A proposed selector as our configured one takes it: inside it, as proposed; holding all of it, narrowed to it
 * (IKEv1 cannot say "narrow", so QM2's IDs carry the smaller selector, as strongSwan answers; vpnc and other
 * Cisco-style clients always propose 0.0.0.0/0 for the far side); otherwise null.
 */
function narrow(configured: TrafficSelector, proposed: TrafficSelector): TrafficSelector | null {
  if (tsContains(configured, proposed)) return proposed;
  return tsContains(proposed, configured) ? configured : null;
}

/**
 * Transport mode through a NAT (RFC 3947 5.2; what L2TP/IPsec clients do): a host behind the NAT proposes its
 * own private address (the one its NAT-OA names), which the other side knows only as the NAT's. So a selector
 * of one address on the side the NAT is on stands for that side's address as this SA sees it, with the
 * protocol and port it proposed, checked as usual.
 */
function behindNat(p: Phase2Policy, ts: TrafficSelector, sa: IsakmpSa, side: 'local' | 'remote'): TrafficSelector {
  const nat = side === 'remote' ? sa.nat.remoteBehindNat : sa.nat.localBehindNat;
  if ((p.mode ?? 'tunnel') !== 'transport' || !nat || (ts.id.kind !== 'ipv4' && ts.id.kind !== 'ipv6')) return ts;
  return { ...hostSelector(side === 'remote' ? sa.remote.address : sa.local.address), protocol: ts.protocol, port: ts.port };
}

/**
 * The lifetime a responder answers: up to its own; a longer (or unlimited) offer is answered with
 * RESPONDER-LIFETIME (`notify`) and both sides use ours.
 */
export function answerLifetime(offer: { lifetimeSeconds?: number | undefined; lifetimeKilobytes?: number | undefined }, policy: Phase2Policy): { seconds: number; kilobytes: number | undefined; notify: { seconds: number | undefined; kilobytes: number | undefined } | null } {
  const offeredSecs = offer.lifetimeSeconds ?? (offer.lifetimeKilobytes === undefined ? DEFAULT_IPSEC_LIFETIME_SECONDS : undefined);
  const maxSecs = policy.lifetimeSeconds ?? DEFAULT_CHILD_LIFETIME_SECONDS;
  const maxKb = policy.lifetimeKilobytes;
  const offeredKb = offer.lifetimeKilobytes;
  const shorterSecs = offeredSecs === undefined || offeredSecs > maxSecs;
  const shorterKb = maxKb !== undefined && (offeredKb === undefined || offeredKb > maxKb);
  return {
    seconds: shorterSecs || offeredSecs === undefined ? maxSecs : offeredSecs,
    kilobytes: shorterKb ? maxKb : offeredKb,
    notify: shorterSecs || shorterKb ? { seconds: shorterSecs ? maxSecs : undefined, kilobytes: shorterKb ? maxKb : undefined } : null };
}
