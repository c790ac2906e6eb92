// What an established SA keeps for its whole life, laid out to cost little: a gateway holds 100,000 of
// them. Two things matter:
//  - Buffers. The crypto provider and Buffer.from hand out slices of Node's shared 8 KiB pool; a slab is
//    freed only when every slice of it is, so one 20-byte key that outlives its handshake pins 8 KiB of
//    temporaries. Long-lived bytes are copied into one allocation of their own per SA.
//  - Small objects that are the same for most SAs (a proposal, NAT and vendor ID flags, an algorithm
//    name): one shared, frozen copy instead of one per SA.
import type { ChildSa, EspKeys, IsakmpSa } from './sa-types.js';
import type { TrafficSelector } from './traffic-selectors.js';

/**
 * `parts` one after the other in one allocation outside the pool, for bytes kept for an SA's life. The caller
 * wipes the originals that were secret.
 */
export function compactBlock(parts: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (const p of parts) total += p.length;
  const block = Buffer.allocUnsafeSlow(total);
  let at = 0;
  for (const p of parts) {
    block.set(p, at);
    at += p.length;
  }
  return block;
}

/** Distinct values kept at most per kind; past that, values are simply not shared (bounded memory). */
const MAX_INTERNED = 256;
const interned = new Map<string, Map<string, unknown>>();

/**
 * One shared, frozen copy of a small value object, by kind and key (the key must determine the value).
 * Frozen so that no holder can change what the others see.
 */
export function intern<T extends object>(kind: string, key: string, value: T): Readonly<T> {
  let m = interned.get(kind);
  if (m === undefined) interned.set(kind, (m = new Map()));
  const hit = m.get(key);
  if (hit !== undefined) return hit as T;
  if (m.size >= MAX_INTERNED) return value;
  Object.freeze(value);
  m.set(key, value);
  return value;
}

/** One shared copy of a string that many SAs carry (an algorithm name, a proposal keyword). */
export function internString(s: string): string {
  const hit = strings.get(s);
  if (hit !== undefined) return hit;
  if (strings.size < MAX_INTERNED) strings.set(s, s);
  return s;
}
const strings = new Map<string, string>();

/**
 * A child SA as a gateway keeps it for its life: the fields of ChildSa, with the SPIs and both directions'
 * keys in one allocation and no per-key objects (the SPIs are views made when asked for). The keys are needed
 * again only for `ike keylog` (fullChildSa); the ESP SAs hold their own copies.
 */
export class RetainedChildSa implements Omit<ChildSa, 'inbound' | 'outbound'> {
  readonly name: string;
  readonly messageId: number;
  readonly initiator: boolean;
  readonly algorithm: ChildSa['algorithm'];
  readonly proposal: string;
  readonly mode: ChildSa['mode'];
  readonly encapsulation: boolean;
  readonly localTs: TrafficSelector;
  readonly remoteTs: TrafficSelector;
  readonly lifetimeSeconds: number;
  readonly lifetimeKilobytes: number | undefined;
  readonly pfsGroup: ChildSa['pfsGroup'];
  readonly esn: boolean;
  readonly establishedAt: number;
  readonly expiresAt: number;
  /** spiIn | spiOut | inbound (key, salt, integrity key) | outbound (the same). */
  readonly keyBlock: Buffer;
  readonly keyLengths: Readonly<{ encryption: number; salt: number; integrity: number }>;

  constructor(c: ChildSa) {
    const i = c.inbound;
    const o = c.outbound;
    this.keyBlock = compactBlock([c.spiIn, c.spiOut, i.encryptionKey, i.salt, i.integrityKey, o.encryptionKey, o.salt, o.integrityKey]);
    const ts = (t: TrafficSelector) => intern('trafficSelector', JSON.stringify(t), { id: { ...t.id }, protocol: t.protocol, port: t.port } as TrafficSelector);
    this.name = c.name;
    this.messageId = c.messageId;
    this.initiator = c.initiator;
    this.algorithm = c.algorithm;
    this.proposal = internString(c.proposal);
    this.mode = c.mode;
    this.encapsulation = c.encapsulation;
    this.localTs = ts(c.localTs);
    this.remoteTs = ts(c.remoteTs);
    this.lifetimeSeconds = c.lifetimeSeconds;
    this.lifetimeKilobytes = c.lifetimeKilobytes;
    this.pfsGroup = c.pfsGroup;
    this.esn = c.esn;
    this.establishedAt = c.establishedAt;
    this.expiresAt = c.expiresAt;
    this.keyLengths = intern('espKeyLengths', `${i.encryptionKey.length}/${i.salt.length}/${i.integrityKey.length}`, {
      encryption: i.encryptionKey.length,
      salt: i.salt.length,
      integrity: i.integrityKey.length,
    });
  }

  /** The SPI we receive on (a view on the block). */
  get spiIn(): Buffer {
    return this.keyBlock.subarray(0, 4);
  }

  /** The SPI we send on. */
  get spiOut(): Buffer {
    return this.keyBlock.subarray(4, 8);
  }
}

export function retainChildSa(c: ChildSa): RetainedChildSa {
  return new RetainedChildSa(c);
}

/** The ChildSa again, keys included (views on the retained block), optional fields only where set. */
export function fullChildSa(r: RetainedChildSa): ChildSa {
  const l = r.keyLengths;
  let at = 8;
  const take = (n: number) => r.keyBlock.subarray(at, (at += n));
  const keys = (): EspKeys => ({ encryptionKey: take(l.encryption), salt: take(l.salt), integrityKey: take(l.integrity) });
  const inbound = keys();
  const outbound = keys();
  const c: ChildSa = {
    name: r.name,
    messageId: r.messageId,
    initiator: r.initiator,
    spiIn: r.spiIn,
    spiOut: r.spiOut,
    algorithm: r.algorithm,
    proposal: r.proposal,
    mode: r.mode,
    encapsulation: r.encapsulation,
    inbound,
    outbound,
    localTs: r.localTs,
    remoteTs: r.remoteTs,
    lifetimeSeconds: r.lifetimeSeconds,
    esn: r.esn,
    establishedAt: r.establishedAt,
    expiresAt: r.expiresAt,
  };
  if (r.lifetimeKilobytes !== undefined) c.lifetimeKilobytes = r.lifetimeKilobytes;
  if (r.pfsGroup !== undefined) c.pfsGroup = r.pfsGroup;
  return c;
}

/**
 * An established ISAKMP SA as kept for its life: the cookies, SKEYID_d/_a/_e, Ka and the last phase 1 IV in one
 * block, each handed out as a fresh view when read. Seven views kept for hours would cost ~0.5 KiB per SA
 * (100,000 SAs: 50 MB); a view made per read costs tens of nanoseconds on a path that runs per message.
 * The keys are getters on the class, so `{ ...sa }` does not copy them (plainIsakmpSa does); own accessors
 * would spread, but defining them costs ~2 us per SA, 10% of the protocol's own time per handshake.
 */
export class RetainedIsakmpSa implements IsakmpSa {
  readonly name: string;
  readonly initiator: boolean;
  readonly mode: IsakmpSa['mode'];
  readonly local: IsakmpSa['local'];
  readonly remote: IsakmpSa['remote'];
  readonly localId: IsakmpSa['localId'];
  readonly remoteId: IsakmpSa['remoteId'];
  readonly proposal: IsakmpSa['proposal'];
  readonly algorithms: string;
  readonly nat: IsakmpSa['nat'];
  readonly peerVendorIds: IsakmpSa['peerVendorIds'];
  readonly establishedAt: number;
  readonly expiresAt: number;
  /** cookieI | cookieR | SKEYID_d | SKEYID_a | SKEYID_e | Ka | last IV */
  readonly keyBlock: Buffer;
  /** hash length (the three SKEYIDs) | Ka length << 8 (each < 256) */
  private readonly lengths: number;

  constructor(fields: Omit<IsakmpSa, 'cookieI' | 'cookieR' | 'skeyidD' | 'skeyidA' | 'skeyidE' | 'encryptionKey' | 'lastIv'>, keyBlock: Buffer, hashLength: number, keyLength: number) {
    this.name = fields.name;
    this.initiator = fields.initiator;
    this.mode = fields.mode;
    this.local = fields.local;
    this.remote = fields.remote;
    this.localId = fields.localId;
    this.remoteId = fields.remoteId;
    this.proposal = fields.proposal;
    this.algorithms = fields.algorithms;
    this.nat = fields.nat;
    this.peerVendorIds = fields.peerVendorIds;
    this.establishedAt = fields.establishedAt;
    this.expiresAt = fields.expiresAt;
    this.keyBlock = keyBlock;
    this.lengths = hashLength | (keyLength << 8);
  }

  get cookieI(): Buffer {
    return this.keyBlock.subarray(0, 8);
  }
  get cookieR(): Buffer {
    return this.keyBlock.subarray(8, 16);
  }
  get skeyidD(): Buffer {
    return this.keyBlock.subarray(16, 16 + (this.lengths & 0xff));
  }
  get skeyidA(): Buffer {
    const h = this.lengths & 0xff;
    return this.keyBlock.subarray(16 + h, 16 + 2 * h);
  }
  get skeyidE(): Buffer {
    const h = this.lengths & 0xff;
    return this.keyBlock.subarray(16 + 2 * h, 16 + 3 * h);
  }
  get encryptionKey(): Buffer {
    const at = 16 + 3 * (this.lengths & 0xff);
    return this.keyBlock.subarray(at, at + (this.lengths >> 8));
  }
  get lastIv(): Buffer {
    return this.keyBlock.subarray(16 + 3 * (this.lengths & 0xff) + (this.lengths >> 8));
  }
}

/** A plain-object copy of an ISAKMP SA, keys included (views on the same bytes): `{ ...plainIsakmpSa(sa), x }`. */
export function plainIsakmpSa(sa: IsakmpSa): IsakmpSa {
  return {
    name: sa.name,
    initiator: sa.initiator,
    mode: sa.mode,
    cookieI: sa.cookieI,
    cookieR: sa.cookieR,
    local: sa.local,
    remote: sa.remote,
    localId: sa.localId,
    remoteId: sa.remoteId,
    proposal: sa.proposal,
    algorithms: sa.algorithms,
    skeyidD: sa.skeyidD,
    skeyidA: sa.skeyidA,
    skeyidE: sa.skeyidE,
    encryptionKey: sa.encryptionKey,
    lastIv: sa.lastIv,
    nat: sa.nat,
    peerVendorIds: sa.peerVendorIds,
    establishedAt: sa.establishedAt,
    expiresAt: sa.expiresAt,
  };
}
