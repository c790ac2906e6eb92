// The Transaction exchange (ISAKMP exchange type 6, draft-dukes-ike-mode-cfg-02 3.2) that carries
// Mode-Config and XAUTH (draft-beaulieu-ike-xauth-02) after phase 1. Each request/answer pair is an
// exchange of its own with its own message ID:
//   HDR*, HASH(1), ATTR(REQUEST | SET)  -->
//                         <-- HDR*, HASH(1), ATTR(REPLY | ACK)
//   HASH(1) = prf(SKEYID_a, M-ID | ATTR)   (as in an Informational; same formula both ways)
// The first message is encrypted with IV = hash(last phase-1 CBC block | M-ID); the answer chains on
// the last cipher block of the request (the same per-exchange IV chain as Quick Mode).
//
// Sans I/O: `TransactionChannel` keeps the exchanges of one ISAKMP SA, both those we started (with a
// Retransmitter) and those the peer started (their answer is cached and re-sent for a duplicate).
// A message that does not decrypt or whose HASH does not verify changes nothing.
import type { CryptoProvider } from '../crypto/index.js';
import { ExchangeType, Flags, ModeCfgType, PayloadType, type Attribute, type AttributePayload, type IsakmpHeader } from '../isakmp/index.js';
import { hash1, hash1Equals, openProtected, phase2Iv, randomMessageId, sealProtected, type Phase2Keys } from './phase2-crypto.js';
import { DEFAULT_RETRANSMIT, Retransmitter, type RetransmitPolicy } from './retransmit.js';

export function attributePayload(cfgType: number, identifier: number, attributes: readonly Attribute[]): AttributePayload {
  return { type: PayloadType.ATTRIBUTE, cfgType, identifier: identifier & 0xffff, attributes: [...attributes] };
}

export function cfgTypeName(t: number): string {
  for (const [k, v] of Object.entries(ModeCfgType)) if (v === t) return k;
  return `CFG_${t}`;
}

/** Seals one Transaction message under `iv`; returns the datagram and the IV the next message chains on. */
export function transactionMessage(
  crypto: CryptoProvider,
  sa: Phase2Keys,
  messageId: number,
  iv: Buffer,
  attr: AttributePayload,
): { message: Buffer; nextIv: Buffer } {
  return sealProtected(crypto, sa, ExchangeType.TRANSACTION, messageId, iv, [attr], (rest) => hash1(crypto, sa, messageId, rest));
}

export type ReadTransaction = { ok: true; attr: AttributePayload; nextIv: Buffer } | { ok: false; reason: string };

/** Decrypts with `iv`, checks HASH(1) in constant time, and returns the single ATTR payload. */
export function readTransaction(crypto: CryptoProvider, sa: Phase2Keys, header: IsakmpHeader, body: Buffer, iv: Buffer): ReadTransaction {
  if (header.exchangeType !== ExchangeType.TRANSACTION) return { ok: false, reason: 'not a Transaction exchange' };
  if (!header.initiatorCookie.equals(sa.cookieI) || !header.responderCookie.equals(sa.cookieR)) return { ok: false, reason: 'cookies of another ISAKMP SA' };
  if ((header.flags & Flags.ENCRYPTION) === 0) return { ok: false, reason: 'unencrypted Transaction (not authenticated)' };
  if (header.messageId === 0) return { ok: false, reason: 'Transaction with message ID 0' };
  const o = openProtected(crypto, sa, header, body, iv);
  if (!o.ok) return { ok: false, reason: `Transaction ${o.reason}` };
  if (!hash1Equals(crypto, sa, header.messageId, o.restBytes, o.hash)) return { ok: false, reason: 'Transaction HASH(1) does not verify' };
  const attrs = o.rest.filter((p): p is AttributePayload => p.type === PayloadType.ATTRIBUTE);
  if (attrs.length !== 1) return { ok: false, reason: `Transaction with ${attrs.length} attribute payloads (one expected)` };
  return { ok: true, attr: attrs[0]!, nextIv: o.nextIv };
}

export type TransactionEvent =
  /** The peer sent a REQUEST or SET: answer it with TransactionChannel.respond(messageId, ...). */
  | { kind: 'request'; messageId: number; attr: AttributePayload }
  /** The REPLY / ACK to one of our requests. */
  | { kind: 'reply'; messageId: number; attr: AttributePayload; request: AttributePayload }
  /** One of our requests got no answer after every retransmission. */
  | { kind: 'timeout'; messageId: number; request: AttributePayload; afterMs: number };

export interface TransactionOutput {
  send: Buffer[];
  timer: number | null;
  events: TransactionEvent[];
  dropped: string[];
}

interface Outgoing {
  request: AttributePayload;
  /** IV the answer is encrypted with (last block of our request). */
  replyIv: Buffer;
  retransmitter: Retransmitter;
  done: boolean;
}

interface Incoming {
  /** The encrypted body of the request, to recognise a retransmission. */
  body: Buffer;
  replyIv: Buffer;
  request: AttributePayload;
  answer: Buffer | null;
}

export interface TransactionChannelOptions {
  retransmit?: RetransmitPolicy;
  /** Message IDs unique on the ISAKMP SA (IsakmpSaContext.newMessageId); default: random, unique in this channel. */
  newMessageId?: () => number;
  /** Answered peer exchanges kept for duplicates (default 16). */
  keepAnswered?: number;
}

const MAX_UNANSWERED = 4;

export class TransactionChannel {
  private readonly outgoing = new Map<number, Outgoing>();
  private readonly incoming = new Map<number, Incoming>();
  private readonly used = new Set<number>();

  constructor(
    readonly crypto: CryptoProvider,
    readonly sa: Phase2Keys,
    private readonly options: TransactionChannelOptions = {},
  ) {}

  private messageId(): number {
    for (;;) {
      const id = this.options.newMessageId ? this.options.newMessageId() : randomMessageId(this.crypto);
      if (!this.used.has(id)) {
        this.used.add(id);
        return id;
      }
    }
  }

  /** Starts an exchange with a REQUEST or SET. The identifier defaults to a random 16-bit value. */
  request(cfgType: number, attributes: readonly Attribute[], now: number, identifier?: number): { messageId: number; out: TransactionOutput } {
    if (cfgType !== ModeCfgType.CFG_REQUEST && cfgType !== ModeCfgType.CFG_SET) throw new RangeError(`a Transaction starts with CFG_REQUEST or CFG_SET, not ${cfgTypeName(cfgType)}`);
    const messageId = this.messageId();
    const attr = attributePayload(cfgType, identifier ?? this.crypto.randomBytes(2).readUInt16BE(0), attributes);
    const sealed = transactionMessage(this.crypto, this.sa, messageId, phase2Iv(this.crypto, this.sa, messageId), attr);
    const retransmitter = new Retransmitter(this.options.retransmit ?? DEFAULT_RETRANSMIT);
    retransmitter.arm(sealed.message, now);
    this.outgoing.set(messageId, { request: attr, replyIv: sealed.nextIv, retransmitter, done: false });
    this.prune();
    return { messageId, out: { send: [sealed.message], timer: this.deadline, events: [], dropped: [] } };
  }

  /** Answers the peer's exchange `messageId` (REPLY to a REQUEST, ACK to a SET). Returns the datagram. */
  respond(messageId: number, cfgType: number, attributes: readonly Attribute[]): Buffer {
    const inc = this.incoming.get(messageId);
    if (inc === undefined) throw new RangeError(`no peer Transaction with message ID ${messageId}`);
    if (inc.answer !== null) throw new RangeError(`Transaction ${messageId} is already answered`);
    const expected = inc.request.cfgType === ModeCfgType.CFG_REQUEST ? ModeCfgType.CFG_REPLY : ModeCfgType.CFG_ACK;
    if (cfgType !== expected) throw new RangeError(`${cfgTypeName(inc.request.cfgType)} is answered with ${cfgTypeName(expected)}, not ${cfgTypeName(cfgType)}`);
    const attr = attributePayload(cfgType, inc.request.identifier, attributes);
    inc.answer = transactionMessage(this.crypto, this.sa, messageId, inc.replyIv, attr).message;
    return inc.answer;
  }

  /** A Transaction datagram (already split by parseMessage) with this SA's cookies. */
  handle(header: IsakmpHeader, body: Buffer, now: number): TransactionOutput {
    const out: TransactionOutput = { send: [], timer: null, events: [], dropped: [] };
    const finish = (): TransactionOutput => {
      out.timer = this.deadline;
      return out;
    };
    const mid = header.messageId >>> 0;
    const og = this.outgoing.get(mid);
    if (og !== undefined) {
      if (og.done) {
        out.dropped.push(`Transaction ${mid}: duplicate answer`);
        return finish();
      }
      const r = readTransaction(this.crypto, this.sa, header, body, og.replyIv);
      if (!r.ok) {
        out.dropped.push(`Transaction ${mid}: ${r.reason}`);
        return finish();
      }
      const want = og.request.cfgType === ModeCfgType.CFG_REQUEST ? ModeCfgType.CFG_REPLY : ModeCfgType.CFG_ACK;
      // An answer echoes the request's identifier, except that strongSwan 5.9's XAUTH client answers with
      // identifier 0 (seen in test/interop/remote-access.test.ts): 0 is taken as "not echoed". The message ID
      // and HASH already bind the answer to this request; a different non-zero identifier is still refused.
      if (r.attr.cfgType !== want || (r.attr.identifier !== og.request.identifier && r.attr.identifier !== 0)) {
        out.dropped.push(`Transaction ${mid}: ${cfgTypeName(r.attr.cfgType)} id ${r.attr.identifier} does not answer ${cfgTypeName(og.request.cfgType)} id ${og.request.identifier}`);
        return finish();
      }
      og.done = true;
      og.retransmitter.clear();
      void now;
      out.events.push({ kind: 'reply', messageId: mid, attr: r.attr, request: og.request });
      return finish();
    }
    const inc = this.incoming.get(mid);
    if (inc !== undefined) {
      // A retransmitted request: answer it again from the cache, never process it twice.
      if (inc.answer !== null && inc.body.equals(body)) out.send.push(inc.answer);
      else out.dropped.push(`Transaction ${mid}: ${inc.answer === null ? 'request still being processed' : 'different message with a used message ID'}`);
      return finish();
    }
    if (this.used.has(mid)) {
      out.dropped.push(`Transaction with a used message ID ${mid}`);
      return finish();
    }
    const r = readTransaction(this.crypto, this.sa, header, body, phase2Iv(this.crypto, this.sa, mid));
    if (!r.ok) {
      out.dropped.push(r.reason);
      return finish();
    }
    if (r.attr.cfgType !== ModeCfgType.CFG_REQUEST && r.attr.cfgType !== ModeCfgType.CFG_SET) {
      out.dropped.push(`Transaction ${mid}: unsolicited ${cfgTypeName(r.attr.cfgType)}`);
      return finish();
    }
    // Requests the session has not answered yet are few (it answers at once, or after one password check);
    // more than this is a peer flooding us, and the extra ones are dropped.
    let unanswered = 0;
    for (const e of this.incoming.values()) if (e.answer === null) unanswered++;
    if (unanswered >= MAX_UNANSWERED) {
      out.dropped.push(`Transaction ${mid}: ${unanswered} requests still unanswered`);
      return finish();
    }
    this.used.add(mid);
    this.incoming.set(mid, { body: Buffer.from(body), replyIv: r.nextIv, request: r.attr, answer: null });
    this.prune();
    out.events.push({ kind: 'request', messageId: mid, attr: r.attr });
    return finish();
  }

  onTimer(now: number): TransactionOutput {
    const out: TransactionOutput = { send: [], timer: null, events: [], dropped: [] };
    for (const [mid, og] of this.outgoing) {
      const due = og.retransmitter.due(now);
      if (due === 'timeout') {
        og.done = true;
        out.events.push({ kind: 'timeout', messageId: mid, request: og.request, afterMs: og.retransmitter.totalMs() });
      } else if (due !== null) out.send.push(due);
    }
    out.timer = this.deadline;
    return out;
  }

  /** Stops retransmitting every request (the session is over). */
  cancel(): void {
    for (const og of this.outgoing.values()) {
      og.done = true;
      og.retransmitter.clear();
    }
  }

  get deadline(): number | null {
    let t: number | null = null;
    for (const og of this.outgoing.values()) {
      const d = og.retransmitter.deadline;
      if (d !== null && (t === null || d < t)) t = d;
    }
    return t;
  }

  /** Our requests still waiting for an answer. */
  get pending(): number {
    let n = 0;
    for (const og of this.outgoing.values()) if (!og.done) n++;
    return n;
  }

  private prune(): void {
    const keep = this.options.keepAnswered ?? 16;
    for (const map of [this.outgoing, this.incoming] as Map<number, Outgoing | Incoming>[]) {
      if (map.size <= keep) continue;
      for (const [id, e] of map) {
        if (map.size <= keep) break;
        const finished = 'done' in e ? e.done : e.answer !== null;
        if (finished) map.delete(id);
      }
    }
  }
}
