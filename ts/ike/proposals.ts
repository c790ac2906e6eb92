// Phase 1 proposals: strongSwan's keywords (what users already write) <-> ISAKMP transforms, and the
// responder's choice among the initiator's offer.
import { dhGroupInfo, SUPPORTED_DH_GROUPS, type DhGroupId, type HashName, type IkeCipherName } from '../crypto/index.js';
import {
  AuthMethod,
  IkeAttr,
  IkeEncr,
  IkeHash,
  IkeTransformId,
  LifeType,
  attrNumber,
  attrValue,
  findAttr,
  lifeValueAttr,
  tv,
  type Attribute,
  type Proposal,
  type Transform,
} from '../isakmp/index.js';

export interface IkeProposal {
  encryption: IkeCipherName;
  hash: HashName;
  group: DhGroupId;
  /** AuthMethod value; PRE_SHARED_KEY for now. */
  authMethod: number;
  lifetimeSeconds: number;
  /**
   * Responder only: the initiator offered this longer lifetime and lifetimeSeconds is ours, the shorter one.
   * We say so with RESPONDER-LIFETIME and re-key phase 1 ourselves (RFC 2407 4.5.4's rule, for the ISAKMP SA).
   */
  offeredLifetimeSeconds?: number;
}

export interface ProposalOptions {
  /** DES, MD5, MODP 768/1024 are refused unless this is set. */
  allowWeak?: boolean;
  lifetimeSeconds?: number;
  authMethod?: number;
}

export const DEFAULT_IKE_LIFETIME_SECONDS = 8 * 3600;

const ENCRYPTION_KEYWORDS: Record<string, IkeCipherName> = {
  aes: 'aes-128-cbc',
  aes128: 'aes-128-cbc',
  aes192: 'aes-192-cbc',
  aes256: 'aes-256-cbc',
  '3des': 'des-ede3-cbc',
  des: 'des-cbc',
};
const HASH_KEYWORDS: Record<string, HashName> = {
  md5: 'md5',
  sha: 'sha1',
  sha1: 'sha1',
  sha256: 'sha256',
  sha2_256: 'sha256',
  sha384: 'sha384',
  sha2_384: 'sha384',
  sha512: 'sha512',
  sha2_512: 'sha512',
};
// In IKEv1 the prf is the HMAC of the negotiated hash: strongSwan's prf keywords are accepted and must agree.
const PRF_KEYWORDS: Record<string, HashName> = {
  prfmd5: 'md5',
  prfsha1: 'sha1',
  prfsha256: 'sha256',
  prfsha384: 'sha384',
  prfsha512: 'sha512',
};
function groupKeywords(): Record<string, DhGroupId> {
  const out: Record<string, DhGroupId> = {};
  for (const id of SUPPORTED_DH_GROUPS) out[dhGroupInfo(id)!.keyword] = id;
  return out;
}
const GROUP_KEYWORDS = groupKeywords();

const CIPHER_TO_WIRE: Record<IkeCipherName, { id: number; keyBits?: number }> = {
  'aes-128-cbc': { id: IkeEncr.AES_CBC, keyBits: 128 },
  'aes-192-cbc': { id: IkeEncr.AES_CBC, keyBits: 192 },
  'aes-256-cbc': { id: IkeEncr.AES_CBC, keyBits: 256 },
  'des-ede3-cbc': { id: IkeEncr['3DES_CBC'] },
  'des-cbc': { id: IkeEncr.DES_CBC },
};
const HASH_TO_WIRE: Record<HashName, number> = {
  md5: IkeHash.MD5,
  sha1: IkeHash.SHA,
  sha256: IkeHash.SHA2_256,
  sha384: IkeHash.SHA2_384,
  sha512: IkeHash.SHA2_512,
};

const WIRE_TO_HASH = new Map<number, HashName>((Object.keys(HASH_TO_WIRE) as HashName[]).map((h) => [HASH_TO_WIRE[h], h]));

/**
 * Parses one strongSwan IKE proposal string ("aes128-sha1-modp2048", "aes128-aes256-sha256-ecp256-modp2048").
 * Several keywords of one kind give every combination, in the order written, as strongSwan does.
 */
export function parseIkeProposal(text: string, options: ProposalOptions = {}): { ok: true; value: IkeProposal[] } | { ok: false; error: string } {
  const enc: IkeCipherName[] = [];
  const hash: HashName[] = [];
  const groups: DhGroupId[] = [];
  let prf: HashName | undefined;
  const tokens = text.trim().toLowerCase().split('-');
  for (const t of tokens) {
    if (Object.hasOwn(ENCRYPTION_KEYWORDS, t)) enc.push(ENCRYPTION_KEYWORDS[t]!);
    else if (Object.hasOwn(HASH_KEYWORDS, t)) hash.push(HASH_KEYWORDS[t]!);
    else if (Object.hasOwn(PRF_KEYWORDS, t)) prf = PRF_KEYWORDS[t];
    else if (Object.hasOwn(GROUP_KEYWORDS, t)) groups.push(GROUP_KEYWORDS[t]!);
    else return { ok: false, error: `unknown keyword '${t}' in IKE proposal '${text}'` };
  }
  if (enc.length === 0) return { ok: false, error: `IKE proposal '${text}' names no encryption algorithm (e.g. aes128)` };
  if (hash.length === 0) {
    if (prf === undefined) return { ok: false, error: `IKE proposal '${text}' names no hash algorithm (e.g. sha256)` };
    hash.push(prf);
  }
  if (prf !== undefined && hash.some((h) => h !== prf)) {
    return { ok: false, error: `IKE proposal '${text}': in IKEv1 the prf is HMAC of the hash, so prf and hash must agree` };
  }
  if (groups.length === 0) return { ok: false, error: `IKE proposal '${text}' names no DH group (e.g. modp2048)` };
  if (!options.allowWeak) {
    const weak = [
      ...enc.filter((e) => e === 'des-cbc').map(() => 'des'),
      ...hash.filter((h) => h === 'md5').map(() => 'md5'),
      ...groups.filter((g) => dhGroupInfo(g)!.weak).map((g) => dhGroupInfo(g)!.keyword),
    ];
    if (weak.length > 0) {
      return { ok: false, error: `IKE proposal '${text}' uses weak algorithm(s) ${[...new Set(weak)].join(', ')}; set allowWeak to use them` };
    }
  }
  const out: IkeProposal[] = [];
  for (const e of enc)
    for (const h of hash)
      for (const g of groups)
        out.push({
          encryption: e,
          hash: h,
          group: g,
          authMethod: options.authMethod ?? AuthMethod.PRE_SHARED_KEY,
          lifetimeSeconds: options.lifetimeSeconds ?? DEFAULT_IKE_LIFETIME_SECONDS,
        });
  return { ok: true, value: out };
}

/** strongSwan-style name of a proposal, for logs and events: "aes128-sha1-modp2048". */
export function ikeProposalName(p: IkeProposal): string {
  return `${ENCRYPTION_NAME[p.encryption]}-${p.hash}-${dhGroupInfo(p.group)!.keyword}`;
}
/** The keyword of each cipher ('aes' is only an alias of aes128). */
const ENCRYPTION_NAME = Object.fromEntries(Object.entries(ENCRYPTION_KEYWORDS).filter(([k]) => k !== 'aes').map(([k, v]) => [v, k])) as Record<IkeCipherName, string>;

/** The transform that offers this proposal (attributes in the order strongSwan sends them). */
export function ikeTransform(p: IkeProposal, number: number): Transform {
  const enc = CIPHER_TO_WIRE[p.encryption];
  const attributes: Attribute[] = [tv(IkeAttr.ENCRYPTION_ALGORITHM, enc.id)];
  if (enc.keyBits !== undefined) attributes.push(tv(IkeAttr.KEY_LENGTH, enc.keyBits));
  attributes.push(
    tv(IkeAttr.HASH_ALGORITHM, HASH_TO_WIRE[p.hash]),
    tv(IkeAttr.AUTHENTICATION_METHOD, p.authMethod),
    tv(IkeAttr.GROUP_DESCRIPTION, p.group),
    tv(IkeAttr.LIFE_TYPE, LifeType.SECONDS),
    lifeValueAttr(IkeAttr.LIFE_DURATION, p.lifetimeSeconds),
  );
  return { number, transformId: IkeTransformId.KEY_IKE, attributes };
}

/** No SPI (RFC 2409: the ISAKMP SA is named by the cookies); shared, never written to. */
const EMPTY_SPI = Buffer.alloc(0);

/** The phase 1 offer: one ISAKMP proposal whose transforms are the alternatives, in priority order. */
export function ikeOffer(proposals: readonly IkeProposal[]): Proposal {
  return {
    number: 1,
    protocolId: 1 /* PROTO_ISAKMP */,
    spi: EMPTY_SPI,
    transforms: proposals.map((p, i) => ikeTransform(p, i + 1)),
  };
}

/**
 * Reads an offered transform. Returns null with the reason for anything we do not implement (unknown
 * algorithm, a kilobyte lifetime only, an unsupported group), so that the choice can skip it and the
 * error can list it.
 */
export function ikeProposalFromTransform(t: Transform): { ok: true; value: IkeProposal } | { ok: false; error: string } {
  if (t.transformId !== IkeTransformId.KEY_IKE) return { ok: false, error: `transform ID ${t.transformId} is not KEY_IKE` };
  // The first attribute of each type counts (as findAttr would pick it), read in one pass.
  let encA: Attribute | undefined, keyA: Attribute | undefined, hashA: Attribute | undefined, authA: Attribute | undefined, groupA: Attribute | undefined;
  for (const a of t.attributes) {
    if (a.type === IkeAttr.ENCRYPTION_ALGORITHM) encA ??= a;
    else if (a.type === IkeAttr.KEY_LENGTH) keyA ??= a;
    else if (a.type === IkeAttr.HASH_ALGORITHM) hashA ??= a;
    else if (a.type === IkeAttr.AUTHENTICATION_METHOD) authA ??= a;
    else if (a.type === IkeAttr.GROUP_DESCRIPTION) groupA ??= a;
  }
  const encId = attrNumber(encA);
  const keyBits = attrNumber(keyA);
  const hashId = attrNumber(hashA);
  const auth = attrNumber(authA);
  const group = attrNumber(groupA);
  let encryption: IkeCipherName | undefined;
  if (encId === IkeEncr.AES_CBC) {
    encryption = keyBits === 128 ? 'aes-128-cbc' : keyBits === 192 ? 'aes-192-cbc' : keyBits === 256 ? 'aes-256-cbc' : undefined;
    if (encryption === undefined) return { ok: false, error: `AES-CBC with key length ${keyBits ?? 'missing'}` };
  } else if (encId === IkeEncr['3DES_CBC']) encryption = 'des-ede3-cbc';
  else if (encId === IkeEncr.DES_CBC) encryption = 'des-cbc';
  else return { ok: false, error: `encryption algorithm ${encId ?? 'missing'}` };
  const hash = hashId === null ? undefined : WIRE_TO_HASH.get(hashId);
  if (hash === undefined) return { ok: false, error: `hash algorithm ${hashId ?? 'missing'}` };
  if (auth === null) return { ok: false, error: 'no authentication method' };
  if (group === null || !(SUPPORTED_DH_GROUPS as readonly number[]).includes(group)) {
    return { ok: false, error: `DH group ${group ?? 'missing'}` };
  }
  // Life type / duration come in pairs; a kilobyte limit is accepted and ignored (strongSwan does the same
  // for IKE SAs), a seconds value is kept.
  let lifetimeSeconds = DEFAULT_IKE_LIFETIME_SECONDS;
  const attrs = t.attributes;
  for (let i = 0; i < attrs.length; i++) {
    if (attrs[i]!.type === IkeAttr.LIFE_TYPE && attrNumber(attrs[i]) === LifeType.SECONDS) {
      const d = attrs[i + 1];
      if (d?.type === IkeAttr.LIFE_DURATION) {
        const v = attrValue(d);
        if (v !== null) lifetimeSeconds = Number(v > 0xffffffff ? 0xffffffff : v);
      }
    }
  }
  return { ok: true, value: { encryption, hash, group: group as DhGroupId, authMethod: auth, lifetimeSeconds } };
}

function sameAlgorithms(a: IkeProposal, b: IkeProposal): boolean {
  return a.encryption === b.encryption && a.hash === b.hash && a.group === b.group && a.authMethod === b.authMethod;
}

export type SelectionOrder = 'responder' | 'initiator';

export interface IkeChoice {
  /** The offered proposal and transform, to echo back unchanged. */
  proposal: Proposal;
  transform: Transform;
  /** Negotiated algorithms; the lifetime is min(offered, ours) (see README: lifetime rule). */
  value: IkeProposal;
  /** Index of our proposal that matched. */
  ours: number;
}

/**
 * The responder's choice. 'responder' order walks our proposals by priority and takes the first the
 * initiator offered (what most gateways do); 'initiator' order takes the initiator's first acceptable one.
 */
export function selectIkeProposal(offer: readonly Proposal[], ours: readonly IkeProposal[], order: SelectionOrder): IkeChoice | null {
  const offered: { proposal: Proposal; transform: Transform; value: IkeProposal }[] = [];
  for (const p of offer) {
    if (p.protocolId !== 1) continue;
    for (const t of p.transforms) {
      const r = ikeProposalFromTransform(t);
      if (r.ok) offered.push({ proposal: p, transform: t, value: r.value });
    }
  }
  const pick = (o: (typeof offered)[number], i: number): IkeChoice => ({
    proposal: o.proposal,
    transform: o.transform,
    value: o.value.lifetimeSeconds > ours[i]!.lifetimeSeconds
      ? { ...o.value, lifetimeSeconds: ours[i]!.lifetimeSeconds, offeredLifetimeSeconds: o.value.lifetimeSeconds }
      : o.value,
    ours: i,
  });
  if (order === 'responder') {
    for (let i = 0; i < ours.length; i++) {
      const o = offered.find((x) => sameAlgorithms(x.value, ours[i]!));
      if (o) return pick(o, i);
    }
  } else {
    for (const o of offered) {
      const i = ours.findIndex((x) => sameAlgorithms(o.value, x));
      if (i >= 0) return pick(o, i);
    }
  }
  return null;
}

/** Human list of an offer for "no proposal chosen" errors: "aes128-sha1-modp2048, 3des-md5-modp1024 (+1 unsupported)". */
export function describeOffer(offer: readonly Proposal[]): string {
  const names: string[] = [];
  let unsupported = 0;
  for (const p of offer)
    for (const t of p.transforms) {
      const r = ikeProposalFromTransform(t);
      if (r.ok) names.push(ikeProposalName(r.value));
      else unsupported++;
    }
  return names.join(', ') + (unsupported ? ` (+${unsupported} unsupported: ${offer.flatMap((p) => p.transforms).map((t) => ikeProposalFromTransform(t)).filter((r) => !r.ok).map((r) => (r as { error: string }).error).join('; ')})` : '');
}

/** Is the responder's answer one of the transforms we offered (lifetime may differ)? */
export function matchAnswer(answer: Transform, ours: readonly IkeProposal[]): IkeProposal | null {
  const r = ikeProposalFromTransform(answer);
  if (!r.ok) return null;
  const i = ours.findIndex((p) => sameAlgorithms(p, r.value));
  if (i < 0) return null;
  return { ...ours[i]!, lifetimeSeconds: Math.min(ours[i]!.lifetimeSeconds, r.value.lifetimeSeconds) };
}
