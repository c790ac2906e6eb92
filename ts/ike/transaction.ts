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
import { cipherInfo, type CryptoProvider } from '../crypto/index.js';
import { ExchangeType, Flags, ModeCfgType, PayloadType, parsePayloads, type Attribute, type AttributePayload, type IsakmpHeader } from '../isakmp/index.js';
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

/**
 * `authenticated`: the HASH(1) verified but the payloads inside do not parse. That is the peer's own message,
 * not a forgery or a wrong IV, so waiting for a retransmission cannot help: the caller reports it at once.
 */
export type ReadTransaction = { ok: true; attr: AttributePayload; nextIv: Buffer } | { ok: false; reason: string; authenticated?: true };

/** Decrypts with `iv`, checks HASH(1) in constant time, and returns the single ATTR payload. */
export function readTransaction(crypto: CryptoProvider, sa: Phase2Keys, header: IsakmpHeader, body: Buffer, iv: Buffer): ReadTransaction {
  if (header.exchangeType !== ExchangeType.TRANSACTION) return { ok: false, reason: 'not a Transaction exchange' };
  if (!header.initiatorCookie.equals(sa.cookieI) || !header.responderCookie.equals(sa.cookieR)) return { ok: false, reason: 'cookies of another ISAKMP SA' };
  if ((header.flags & Flags.ENCRYPTION) === 0) return { ok: false, reason: 'unencrypted Transaction (not authenticated)' };
  if (header.messageId === 0) return { ok: false, reason: 'Transaction with message ID 0' };
  const o = openProtected(crypto, sa, header, body, iv);
  if (!o.ok) {
    const reason = `Transaction ${o.reason}`;
    return authenticatedFraming(crypto, sa, header, body, iv) ? { ok: false, reason, authenticated: true } : { ok: false, reason };
  }
  if (!hash1Equals(crypto, sa, header.messageId, o.restBytes, o.hash)) return { ok: false, reason: 'Transaction HASH(1) does not verify' };
  const attrs = o.rest.filter((p): p is AttributePayload => p.type === PayloadType.ATTRIBUTE);
  if (attrs.length !== 1) return { ok: false, reason: `Transaction with ${attrs.length} attribute payloads (one expected)` };
  return { ok: true, attr: attrs[0]!, nextIv: o.nextIv };
}

/**
 * For a body whose payloads do not parse: does HASH(1) verify over the payloads' bytes as their generic headers
 * (next payload, length) frame them? Only the framing is read, never a payload's contents.
 */
function authenticatedFraming(crypto: CryptoProvider, sa: Phase2Keys, header: IsakmpHeader, body: Buffer, iv: Buffer): boolean {
  const blockSize = cipherInfo(sa.proposal.encryption).blockSize;
  if (header.nextPayload !== PayloadType.HASH || body.length === 0 || body.length % blockSize !== 0) return false;
  const plain = crypto.cbcDecrypt(sa.proposal.encryption, sa.encryptionKey, iv, body);
  if (plain.length < 4) return false;
  const hashEnd = plain.readUInt16BE(2);
  if (hashEnd <= 4 || hashEnd > plain.length) return false;
  let next = plain[0]!;
  let off = hashEnd;
  for (let n = 0; next !== PayloadType.NONE; n++) {
    if (n > 64 || off + 4 > plain.length) return false;
    const len = plain.readUInt16BE(off + 2);
    if (len < 4 || off + len > plain.length) return false;
    next = plain[off]!;
    off += len;
  }
  // The CBC padding after the last payload is not covered by HASH(1): a block appended by an attacker makes the
  // message unparsable while the HASH still verifies. Only a fault inside the payloads is the peer's own.
  if (parsePayloads(header.nextPayload, plain.subarray(0, off), 28, { trailing: 'padding', blockSize }).ok) return false;
  return hash1Equals(crypto, sa, header.messageId, plain.subarray(hashEnd, off), plain.subarray(4, hashEnd));
}

export type TransactionEvent =
  /** The peer sent a REQUEST or SET: answer it with TransactionChannel.respond(messageId, ...). */
  | { kind: 'request'; messageId: number; attr: AttributePayload }
  /** The REPLY / ACK to one of our requests. */
  | { kind: 'reply'; messageId: number; attr: AttributePayload; request: AttributePayload }
  /** One of our requests got no answer after every retransmission. */
  | { kind: 'timeout'; messageId: number; request: AttributePayload; afterMs: number }
  /**
   * An authenticated message that does not parse: the answer to our `request` (which then stops being
   * retransmitted), or a peer-started exchange (no request).
   */
  | { kind: 'malformed'; messageId: number; request?: AttributePayload; reason: string };

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
  /** Once answered: the answer's encrypted body (to recognise its retransmission) and its last cipher block. */
  answerBody?: Buffer;
  afterIv?: Buffer;
}

interface Incoming {
  /** The encrypted body of the request, to recognise a retransmission. */
  body: Buffer;
  replyIv: Buffer;
  request: AttributePayload;
  answer: Buffer | null;
  /** The last cipher block of our answer, once sent. */
  afterIv?: Buffer;
  /** Messages of the earlier exchanges under this message ID: their retransmissions are not new requests. */
  retired?: Buffer[];
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
    const sealed = transactionMessage(this.crypto, this.sa, messageId, inc.replyIv, attr);
    inc.answer = sealed.message;
    inc.afterIv = sealed.nextIv;
    return inc.answer;
  }

  /** A Transaction datagram (already split by parseMessage) with this SA's cookies. */
  handle(header: IsakmpHeader, body: Buffer, now: number): TransactionOutput {
    void now;
    const out: TransactionOutput = { send: [], timer: null, events: [], dropped: [] };
    const mid = header.messageId >>> 0;
    const og = this.outgoing.get(mid);
    const inc = this.incoming.get(mid);
    if (og !== undefined && !og.done) this.answer(og, mid, header, body, out);
    else if (og?.answerBody?.equals(body)) out.dropped.push(`Transaction ${mid}: duplicate answer`);
    else if (inc?.retired?.some((b) => b.equals(body))) out.dropped.push(`Transaction ${mid}: retransmission of an earlier exchange under this message ID`);
    else if (inc !== undefined && inc.body.equals(body)) {
      // A retransmitted request: answer it again from the cache, never process it twice.
      if (inc.answer !== null) out.send.push(inc.answer);
      else out.dropped.push(`Transaction ${mid}: request still being processed`);
    } else if (inc !== undefined && inc.answer === null) {
      out.dropped.push(`Transaction ${mid}: a new message while the exchange with this message ID is still being processed`);
    } else {
      // A new exchange, or a message ID used by an exchange that is complete: some servers push Mode-Config
      // under the message ID of the XAUTH exchange just before. That is a new Transaction; its IV is the
      // fresh per-exchange one, or (other implementations) chained on the last block of the exchange before.
      // Both are tried: only the peer's own HASH(1) verifies under one of them.
      const ivs = [phase2Iv(this.crypto, this.sa, mid)];
      const after = og?.afterIv ?? inc?.afterIv;
      if (after !== undefined) ivs.push(after);
      const retired = [...(inc?.retired ?? []), ...(inc ? [inc.body] : []), ...(og?.answerBody ? [og.answerBody] : [])].slice(-4);
      this.newRequest(mid, header, body, ivs, retired, out);
    }
    out.timer = this.deadline;
    return out;
  }

  /** The peer's answer to our request `og`. */
  private answer(og: Outgoing, mid: number, header: IsakmpHeader, body: Buffer, out: TransactionOutput): void {
    const r = readTransaction(this.crypto, this.sa, header, body, og.replyIv);
    if (!r.ok) {
      if (r.authenticated) {
        // The peer's own answer, unusable: retransmitting our request would only get it again.
        og.done = true;
        og.retransmitter.clear();
        out.events.push({ kind: 'malformed', messageId: mid, request: og.request, reason: r.reason });
      } else out.dropped.push(`Transaction ${mid}: ${r.reason}`);
      return;
    }
    const want = og.request.cfgType === ModeCfgType.CFG_REQUEST ? ModeCfgType.CFG_REPLY : ModeCfgType.CFG_ACK;
    // An answer echoes the request's identifier, except that strongSwan 5.9's XAUTH client answers with
    // identifier 0 (seen in test/interop/remote-access.test.ts): 0 is taken as "not echoed". The message ID
    // and HASH already bind the answer to this request; a different non-zero identifier is still refused.
    if (r.attr.cfgType !== want || (r.attr.identifier !== og.request.identifier && r.attr.identifier !== 0)) {
      out.dropped.push(`Transaction ${mid}: ${cfgTypeName(r.attr.cfgType)} id ${r.attr.identifier} does not answer ${cfgTypeName(og.request.cfgType)} id ${og.request.identifier}`);
      return;
    }
    og.done = true;
    og.retransmitter.clear();
    og.answerBody = Buffer.from(body);
    og.afterIv = r.nextIv;
    out.events.push({ kind: 'reply', messageId: mid, attr: r.attr, request: og.request });
  }

  /** A REQUEST or SET that starts an exchange of the peer's, read under the first of `ivs` that verifies. */
  private newRequest(mid: number, header: IsakmpHeader, body: Buffer, ivs: Buffer[], retired: Buffer[], out: TransactionOutput): void {
    let r: ReadTransaction = { ok: false, reason: 'no IV' };
    for (const iv of ivs) {
      r = readTransaction(this.crypto, this.sa, header, body, iv);
      if (r.ok || r.authenticated) break;
    }
    if (!r.ok) {
      if (r.authenticated) {
        this.used.add(mid);
        out.events.push({ kind: 'malformed', messageId: mid, reason: r.reason });
      } else out.dropped.push(ivs.length > 1 ? `Transaction ${mid} (message ID reused): ${r.reason}` : r.reason);
      return;
    }
    if (r.attr.cfgType !== ModeCfgType.CFG_REQUEST && r.attr.cfgType !== ModeCfgType.CFG_SET) {
      out.dropped.push(`Transaction ${mid}: unsolicited ${cfgTypeName(r.attr.cfgType)}`);
      return;
    }
    // Requests the session has not answered yet are few (it answers at once, or after one password check);
    // more than this is a peer flooding us, and the extra ones are dropped.
    let unanswered = 0;
    for (const e of this.incoming.values()) if (e.answer === null) unanswered++;
    if (unanswered >= MAX_UNANSWERED) {
      out.dropped.push(`Transaction ${mid}: ${unanswered} requests still unanswered`);
      return;
    }
    this.used.add(mid);
    this.outgoing.delete(mid); // a finished exchange of ours under this ID is replaced by the peer's new one
    this.incoming.set(mid, { body: Buffer.from(body), replyIv: r.nextIv, request: r.attr, answer: null, ...(retired.length ? { retired } : {}) });
    this.prune();
    out.events.push({ kind: 'request', messageId: mid, attr: r.attr });
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
