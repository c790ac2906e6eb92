// Phase 1 (ISAKMP SA) negotiation, sans I/O: bytes and the time come in, bytes to send, a timer deadline
// and at most one result (established or failed) come out. The exchanges themselves are chains of state
// types (main-mode.ts, aggressive-mode.ts, over the shared steps of phase1-core.ts); Phase1 is the facade
// the gateway drives: it holds the current state, and what does not depend on the step: retransmission,
// answers to retransmitted requests, forgery tolerance and failure.
import { cipherInfo } from '../crypto/index.js';
import {
  ExchangeType,
  Flags,
  ISAKMP_VERSION,
  NotifyType,
  PayloadType,
  ProtocolId,
  bytesEqual,
  encodeMessage,
  findPayload,
  idToString,
  parseMessage,
  type IsakmpHeader,
  type Payload,
} from '../isakmp/index.js';
import { AmSaReplied, AmSaSent, aggressiveModeRespond, aggressiveModeStart } from './aggressive-mode.js';
import { ZERO_COOKIE } from './cookie.js';
import { asIkeError, IkeError, notifyFor, type IkeErrorKind } from './errors.js';
import { MmAuthSent, MmKeReplied, MmKeSent, MmSaReplied, MmSaSent, mainModeRespond, mainModeStart } from './main-mode.js';
import { notifyName, notifyPayload, phase1NotifyHint } from './notify.js';
import { deleteIsakmpPayload, informationalMessage, readInformational } from './informational.js';
import { randomMessageId, type Phase2Keys } from './phase2-crypto.js';
import { Phase1Done, wipeKeys, type Phase1Base, type Phase1Env, type Phase1Policy, type Transition } from './phase1-core.js';
import { DEFAULT_RETRANSMIT, Retransmitter } from './retransmit.js';
import type { IsakmpSa, NatState } from './sa-types.js';

export type { Endpoint, IsakmpSa, NatState } from './sa-types.js';
export { ikev1KeylogLine, natFloat } from './sa-types.js';
export type { Phase1Env, Phase1Policy } from './phase1-core.js';

export interface Phase1Output {
  send: Buffer[];
  /**
   * To send a moment after `send`: the Delete that follows an encrypted refusal notify. A peer that handles
   * datagrams on several threads (strongSwan) may otherwise take the Delete first and drop the notify with
   * the SA it names.
   */
  later?: Buffer[];
  /** When the caller must call onTimer next (null: no timer). */
  timer: number | null;
  established?: IsakmpSa;
  failed?: IkeError;
}

/** What a step returns (kept for callers of the old mode functions): the message to send and whether the exchange is complete. */
export interface StepResult {
  send?: Buffer;
  established?: boolean;
  /** false: this message ends our part (nothing to wait for). */
  expectReply?: boolean;
}

/** Unverifiable messages remembered to recognise the peer's retransmission of one (see handle). */
const MAX_UNVERIFIED = 8;

/** A state that waits for the peer's next message. */
type Waiting = MmSaSent | MmKeSent | MmAuthSent | MmSaReplied | MmKeReplied | AmSaSent | AmSaReplied;

/** The exchange failed (timeout, the peer's refusal, or a message that proved it cannot succeed). */
class Phase1Failed {
  readonly step = 'FAILED' as const;
  constructor(
    readonly c: Phase1Base,
    readonly nat: NatState,
  ) {}
}

type Phase1State = Waiting | Phase1Done | Phase1Failed;

export type Phase1Step = Phase1State['step'];

/** What a silence most likely means, by the step we were waiting in. */
const TIMEOUT_CAUSE: Partial<Record<Phase1Step, string>> = {
  I_MM_SA: 'peer unreachable: no answer to message 1',
  I_AM_SA: 'peer unreachable: no answer to message 1',
  I_MM_KE: 'no answer to message 3 (the peer may have no pre-shared key for us)',
  I_MM_AUTH: 'no answer to message 5: the peer could not verify us (most often a pre-shared key mismatch, or an identity it does not accept)',
  R_MM_SA: 'the initiator went silent after message 2',
  R_MM_KE: 'the initiator went silent after message 4',
  R_AM_SA: 'no message 3 after our message 2 (the initiator may have rejected our hash: pre-shared key mismatch?)',
};

const NO_NAT: NatState = Object.freeze({ version: null, localBehindNat: false, remoteBehindNat: false });

/**
 * One phase 1 exchange from either side. Create with Phase1.initiate or Phase1.respond; feed it every
 * datagram whose cookies belong to it (handle) and call onTimer at the deadline it asks for. After it is
 * established it keeps answering retransmitted requests from its cache.
 */
export class Phase1 {
  private state: Phase1State;
  private readonly retransmitter: Retransmitter;
  /** The last message we received and our answer to it: a retransmitted request gets the same answer. */
  private lastReceived: Buffer | null = null;
  private lastReply: Buffer | null = null;
  private busy = false;
  /** Messages that failed decryption / HASH verification and were ignored (see handle). */
  private unverified: Buffer[] = [];

  private constructor(
    readonly env: Phase1Env,
    readonly initiator: boolean,
    state: Waiting,
  ) {
    this.state = state;
    this.retransmitter = new Retransmitter(state.c.policy.retransmit ?? DEFAULT_RETRANSMIT);
  }

  /** The step the exchange waits in: I_MM_SA ... R_AM_SA, DONE or FAILED. */
  get step(): Phase1Step {
    return this.state.step;
  }

  /** The connection: the initiator's, or the one the responder settled on when it read the offer. */
  get policy(): Phase1Policy {
    return this.state instanceof Phase1Done ? this.state.policy : this.state.c.policy;
  }

  get cookieI(): Buffer {
    return this.state instanceof Phase1Done ? this.state.cookieI : this.state.c.cookieI;
  }

  /** Zeros until the initiator has read message 2. */
  get cookieR(): Buffer {
    return this.state instanceof Phase1Done ? this.state.cookieR : this.state.c.cookieR;
  }

  /** NAT detection so far (the version once the vendor IDs are read, the flags once NAT-D is). */
  get nat(): NatState {
    const s = this.state;
    if (s instanceof Phase1Done || s instanceof Phase1Failed) return s.nat;
    return 'nat' in s.c ? s.c.nat : NO_NAT;
  }

  /** Has the peer announced IKE fragmentation (its vendor IDs, once read)? */
  get peerFragmentation(): boolean {
    const s = this.state;
    if (s instanceof Phase1Done) return s.sa.peerVendorIds.fragmentation;
    return !(s instanceof Phase1Failed) && 'peerVendorIds' in s.c && s.c.peerVendorIds.fragmentation;
  }

  /** The SA, once established. */
  get established(): IsakmpSa | null {
    return this.state instanceof Phase1Done ? this.state.sa : null;
  }

  /** Starts an exchange as initiator: returns the machine and message 1. */
  static async initiate(env: Phase1Env, policy: Phase1Policy, now: number): Promise<{ phase1: Phase1; out: Phase1Output }> {
    const cookieI = env.cookies.make(now, env.local, env.remote);
    if (policy.mode === 'aggressive') {
      const groups = new Set(policy.proposals.map((p) => p.group));
      if (groups.size !== 1) {
        throw new IkeError(
          'POLICY',
          `connection '${policy.name}': aggressive mode can offer only one DH group (the KE payload travels in message 1), but the proposals use ${[...groups].join(', ')}`,
        );
      }
    }
    if (!policy.psk && !policy.certs) throw new IkeError('NO_PSK', `connection '${policy.name}': no pre-shared key configured for peer ${policy.remoteId ? idToString(policy.remoteId) : env.remote.address}`);
    const base: Phase1Base = { env, policy, initiator: true, cookieI, cookieR: ZERO_COOKIE };
    const { state, send } = policy.mode === 'main' ? mainModeStart(base) : await aggressiveModeStart(base);
    const p = new Phase1(env, true, state);
    return { phase1: p, out: p.request(send, now) };
  }

  /**
   * A message 1 from a peer with no SA yet. `candidates` are the connections whose remote matches the
   * peer's address, in priority order. Returns no machine when the exchange fails at once (nothing is kept);
   * `out` then carries the error and the notify to send.
   */
  static async respond(env: Phase1Env, candidates: readonly Phase1Policy[], message: Buffer, now: number): Promise<{ phase1: Phase1 | null; out: Phase1Output }> {
    const parsed = parseMessage(message);
    if (!parsed.ok) return { phase1: null, out: failedOut(new IkeError('PAYLOAD_MALFORMED', `message 1 from ${env.remote.address}: ${parsed.error.message}`)) };
    if ('encrypted' in parsed.value) {
      return { phase1: null, out: failedOut(new IkeError('PAYLOAD_MALFORMED', `message 1 from ${env.remote.address} is encrypted`)) };
    }
    const { header, payloads } = parsed.value;
    if (!bytesEqual(header.responderCookie, ZERO_COOKIE) || header.messageId !== 0) {
      return { phase1: null, out: failedOut(new IkeError('PAYLOAD_MALFORMED', `message 1 from ${env.remote.address} has a responder cookie or message ID set`)) };
    }
    const mode = header.exchangeType === ExchangeType.IDENTITY_PROTECTION ? 'main' : header.exchangeType === ExchangeType.AGGRESSIVE ? 'aggressive' : null;
    if (mode === null) {
      return { phase1: null, out: failedOut(new IkeError('PAYLOAD_MALFORMED', `exchange type ${header.exchangeType} from ${env.remote.address} does not start a phase 1`)) };
    }
    const usable = candidates.filter((c) => c.mode === mode);
    if (usable.length === 0) {
      const other = candidates.length > 0 ? ` (configured: ${candidates.map((c) => `${c.name}=${c.mode}`).join(', ')})` : '';
      const err = candidates.length === 0
        ? new IkeError('NO_PSK', `no connection (and so no pre-shared key) for peer ${env.remote.address}`, NotifyType.NO_PROPOSAL_CHOSEN)
        : new IkeError('POLICY', `peer ${env.remote.address} started ${mode} mode, but no connection for it uses ${mode} mode${other}`, NotifyType.NO_PROPOSAL_CHOSEN);
      return { phase1: null, out: refuse(env, header, err) };
    }
    const cookieR = env.cookies.make(now, env.local, env.remote, header.initiatorCookie);
    const base: Phase1Base = { env, policy: usable[0]!, initiator: false, cookieI: Buffer.from(header.initiatorCookie), cookieR };
    try {
      const { state, send } = mode === 'main' ? mainModeRespond(base, usable, payloads) : await aggressiveModeRespond(base, usable, payloads);
      const p = new Phase1(env, false, state);
      p.lastReceived = Buffer.from(message);
      // the source of a message 1 is unproven: our retransmissions of the answer stay within what it sent us
      return { phase1: p, out: p.reply(send, now, true, message.length - send.length) };
    } catch (e) {
      return { phase1: null, out: refuse(env, header, asIkeError(e), cookieR) };
    }
  }

  /** A datagram for this exchange (its cookies). */
  async handle(message: Buffer, now: number): Promise<Phase1Output> {
    const state = this.state;
    if (state instanceof Phase1Failed) return this.idle();
    if (this.lastReceived !== null && message.equals(this.lastReceived)) {
      // A retransmission of what we already answered: same answer, no new computation.
      if (this.lastReply) this.retransmitter.answered(message.length, this.lastReply.length);
      return { send: this.lastReply ? [this.lastReply] : [], timer: this.retransmitter.deadline };
    }
    if (state instanceof Phase1Done || this.busy) return this.idle();
    const parsed = parseMessage(message);
    if (!parsed.ok) return this.idle(); // garbage or a forgery: the genuine message may still come
    const header = parsed.value.header;
    if (!bytesEqual(header.initiatorCookie, state.c.cookieI)) return this.idle();
    if (header.exchangeType === ExchangeType.INFORMATIONAL) return 'encrypted' in parsed.value ? this.sealedPeerNotify(state, parsed.value) : this.peerNotify(parsed.value);
    if (header.messageId !== 0) return this.idle();
    const expected = state.c.policy.mode === 'main' ? ExchangeType.IDENTITY_PROTECTION : ExchangeType.AGGRESSIVE;
    if (header.exchangeType !== expected) return this.idle();
    this.busy = true;
    try {
      // The state computes its successor without changing itself: a message that fails leaves it as it was.
      const t = await state.handle(parsed.value, now);
      if (t === null || this.state !== state) return this.idle(); // (or the exchange timed out meanwhile)
      this.lastReceived = Buffer.from(message);
      return this.advance(t, now);
    } catch (e) {
      const err = asIkeError(e);
      if (this.state !== state) return this.idle();
      // Until its HASH verifies, a message may be a forgery by anyone who saw the cookies (one that does not
      // decrypt, a bad HASH, a mangled SA or KE): it is ignored, state as before, so that the genuine message
      // can still complete the exchange. The same bytes again are the peer retransmitting its message: then
      // the failure is real (for a bad HASH: "pre-shared key mismatch") and the exchange fails. Failures that
      // only an authenticated message can cause (a wrong identity) fail at once.
      const unauthenticated = err.kind !== 'AUTHENTICATION_FAILED' && err.kind !== 'POLICY' && err.kind !== 'INTERNAL';
      if (unauthenticated && !this.unverified.some((m) => m.equals(message))) {
        if (this.unverified.length >= MAX_UNVERIFIED) this.unverified.shift();
        this.unverified.push(Buffer.from(message));
        return this.idle();
      }
      return this.fail(err, header, message);
    } finally {
      this.busy = false;
    }
  }

  /** The timer the last output asked for has expired. */
  onTimer(now: number): Phase1Output {
    const due = this.retransmitter.due(now);
    if (due === null) return this.idle();
    if (due === 'timeout') {
      const waited = Math.round(this.retransmitter.totalMs() / 1000);
      const step = this.state.step;
      const what = TIMEOUT_CAUSE[step] ?? `no answer in step ${step}`;
      const policy = this.policy;
      this.toFailed();
      return {
        send: [],
        timer: null,
        failed: new IkeError('TIMEOUT', `${policy.name}: ${what} from ${this.env.remote.address}:${this.env.remote.port} after ${policy.retransmit?.tries ?? DEFAULT_RETRANSMIT.tries} retransmissions (${waited} s)`),
      };
    }
    return { send: [due], timer: this.retransmitter.deadline };
  }

  // ---- outputs ----

  /** We send a request and wait for the answer (retransmitted until it comes). */
  private request(message: Buffer, now: number): Phase1Output {
    this.lastReply = message;
    this.retransmitter.arm(message, now);
    return { send: [message], timer: this.retransmitter.deadline };
  }

  /** We answer a request; a repeat of that request gets this same answer. */
  private reply(message: Buffer, now: number, awaitMore = true, budget = Infinity): Phase1Output {
    this.lastReply = message;
    // The responder also retransmits while it waits, so that a lost last message of the initiator is
    // re-sent (the initiator answers our repeat from its cache).
    if (awaitMore) this.retransmitter.arm(message, now, budget);
    else this.retransmitter.clear();
    return { send: [message], timer: this.retransmitter.deadline };
  }

  private advance(t: Transition<Waiting | Phase1Done>, now: number): Phase1Output {
    this.state = t.next;
    if (t.next instanceof Phase1Done) {
      this.lastReply = t.send ?? null;
      this.retransmitter.clear();
      this.unverified = [];
      return { send: t.send ? [t.send] : [], timer: null, established: t.next.sa };
    }
    if (t.send === undefined) return this.idle();
    return t.expectReply === false ? this.reply(t.send, now, false) : this.initiator ? this.request(t.send, now) : this.reply(t.send, now);
  }

  private idle(): Phase1Output {
    return { send: [], timer: this.retransmitter.deadline };
  }

  private peerNotify(m: { header: IsakmpHeader; payloads?: Payload[] }): Phase1Output {
    // An unauthenticated notify during phase 1. Only error notifies in the clear are read; we stop, since
    // retrying cannot help once the peer refused (strongSwan does the same).
    const n = findPayload(m.payloads ?? [], PayloadType.NOTIFICATION);
    if (n === undefined || n.notifyType >= 8192) return this.idle();
    this.retransmitter.clear();
    this.toFailed();
    return {
      send: [],
      timer: null,
      failed: new IkeError('PEER_NOTIFY', `peer ${this.env.remote.address} refused: ${notifyName(n.notifyType)}${phase1NotifyHint(n.notifyType)}`),
    };
  }

  /**
   * An encrypted Informational before phase 1 is complete: a peer that read our message 5 (or AM message 3) and
   * refuses it says so under the phase 1 keys (strongSwan: AUTHENTICATION_FAILED, INVALID_ID_INFORMATION). Its
   * HASH(1) proves it is the peer's; the IV follows from the last block of our last message, as the peer has it.
   */
  private sealedPeerNotify(state: Waiting, m: { header: IsakmpHeader; encrypted: Buffer }): Phase1Output {
    if (!('keys' in state.c) || m.header.messageId === 0) return this.idle();
    const c = state.c;
    const keys = { cookieI: c.cookieI, cookieR: c.cookieR, skeyidA: c.keys.skeyidA, skeyidD: c.keys.skeyidD, encryptionKey: c.keys.encryptionKey, lastIv: c.iv, proposal: c.proposal };
    const r = readInformational(c.env.crypto, keys as unknown as Phase2Keys, m.header, m.encrypted);
    if (!r.ok) return this.idle();
    const n = r.events.find((e) => e.type === 'notify' && e.error);
    if (n === undefined || n.type !== 'notify') return this.idle();
    this.retransmitter.clear();
    this.toFailed();
    const failed = new IkeError('PEER_NOTIFY', `peer ${this.env.remote.address} refused our authentication: ${notifyName(n.notifyType)}${phase1NotifyHint(n.notifyType)}`);
    return { send: [], timer: null, failed };
  }

  private fail(err: IkeError, header: IsakmpHeader, message?: Buffer): Phase1Output {
    const cookieR = this.cookieR;
    this.retransmitter.clear();
    // An authenticated message that we refuse (a certificate, an identity) came under keys both sides hold:
    // the notify goes in an encrypted Informational, the one a peer with keys reads (strongSwan ignores clear ones)
    const decrypted = err.kind === 'AUTHENTICATION_FAILED' || err.kind === 'CERTIFICATE'; // (a key mismatch: ours are useless to the peer)
    const sealed = message && decrypted && (header.flags & Flags.ENCRYPTION) !== 0 ? sealedRefusal(this.state, err, message) : null;
    this.toFailed();
    if (sealed) return { send: [sealed.notify], later: [sealed.delete], timer: null, failed: err };
    // Before we know the responder's cookie (initiator, message 2) the notify carries the one in the message.
    return refuse(this.env, header, err, bytesEqual(cookieR, ZERO_COOKIE) ? undefined : cookieR);
  }

  /** Ends the exchange: the keys of the current step are wiped and only what the facade reports is kept. */
  private toFailed(): void {
    const s = this.state;
    if (s instanceof Phase1Done || s instanceof Phase1Failed) return;
    const nat = this.nat;
    if ('keys' in s.c) wipeKeys(s.c.keys);
    const c = s.c;
    this.state = new Phase1Failed({ env: c.env, policy: c.policy, initiator: c.initiator, cookieI: c.cookieI, cookieR: c.cookieR }, nat);
    this.unverified = [];
  }
}

/** The failure's notify in encrypted Informationals (HASH(1), IV from the last block of the refused message). */
function sealedRefusal(state: Phase1State, err: IkeError, message: Buffer): { notify: Buffer; delete: Buffer } | null {
  const notifyType = err.notifyType ?? notifyFor(err.kind as IkeErrorKind);
  if (notifyType === undefined || state instanceof Phase1Done || state instanceof Phase1Failed || !('keys' in state.c)) return null;
  const c = state.c;
  const block = cipherInfo(c.proposal.encryption).blockSize;
  const keys = { cookieI: c.cookieI, cookieR: c.cookieR, skeyidA: c.keys.skeyidA, skeyidD: c.keys.skeyidD, encryptionKey: c.keys.encryptionKey, lastIv: message.subarray(message.length - block), proposal: c.proposal };
  const spi = Buffer.concat([c.cookieI, c.cookieR]);
  // then a Delete: a responder that sent message 6 (an AM initiator that sent message 3) holds an SA it believes
  // established, which the notify does not end (strongSwan keeps it, and reads no Delete after an error notify)
  const seal = (p: Payload) => informationalMessage(c.env.crypto, keys as unknown as Phase2Keys, randomMessageId(c.env.crypto), [p]);
  return { notify: seal(notifyPayload(notifyType, ProtocolId.ISAKMP, spi)), delete: seal(deleteIsakmpPayload(c)) };
}

function failedOut(err: IkeError): Phase1Output {
  return { send: [], timer: null, failed: err };
}

/**
 * The failure's notify, in an unencrypted Informational exchange (RFC 2408 5.x: errors before the keys are
 * trusted go in the clear), and the error value.
 */
function refuse(env: Phase1Env, header: IsakmpHeader, err: IkeError, cookieR?: Buffer): Phase1Output {
  const notifyType = err.notifyType ?? notifyFor(err.kind as IkeErrorKind);
  if (notifyType === undefined) return failedOut(err);
  const msg = encodeMessage({
    header: {
      initiatorCookie: header.initiatorCookie,
      responderCookie: cookieR ?? header.responderCookie,
      nextPayload: 0,
      version: ISAKMP_VERSION,
      exchangeType: ExchangeType.INFORMATIONAL,
      flags: 0,
      messageId: Number(env.crypto.randomBytes(4).readUInt32BE(0)) || 1,
      length: 0,
    },
    payloads: [notifyPayload(notifyType, ProtocolId.ISAKMP, Buffer.concat([header.initiatorCookie, cookieR ?? header.responderCookie]))],
  });
  return { send: [msg], timer: null, failed: err };
}
