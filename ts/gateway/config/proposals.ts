// The `ike`, `esp` and `pfs` keys of a connection: the phase 1 and phase 2 offers (acceptable sets when we
// respond), in priority order. Each proposal string may expand to several proposals (ts/ike/proposals.ts,
// ts/ike/esp-proposals.ts); a wrong one is reported at its own index and the rest still parse.
import { dhGroupInfo, SUPPORTED_DH_GROUPS, type DhGroupId } from '../../crypto/index.js';
import { parseEspProposal, withSha256Truncated96, type EspProposal } from '../../ike/esp-proposals.js';
import { parseIkeProposal, type IkeProposal } from '../../ike/proposals.js';
import { boolean, closest, got, stringList, type Problems } from './check.js';

export const DEFAULT_IKE_PROPOSALS = ['aes128-sha256-modp2048', 'aes128-sha1-modp2048'];
export const DEFAULT_ESP_PROPOSALS = ['aes128gcm16', 'aes128-sha256', 'aes128-sha1'];

/** XAUTH_INIT_PSK (draft-ietf-ipsec-isakmp-xauth-06): the PSK key derivation, then XAUTH after phase 1. */
const XAUTH_INIT_PSK = 65001;

/** [path, text] pairs of a proposal list, or the defaults (reported at the key itself) when the key is absent. */
function proposalTexts(p: Problems, at: string, v: unknown, defaults: readonly string[]): Array<[string, string]> {
  return v === undefined ? defaults.map((t): [string, string] => [at, t]) : stringList(p, at, v) ?? [];
}

/**
 * `ike`: the phase 1 proposals. Every transform carries the connection's IKE lifetime, so the lifetime is read
 * before the proposals; with XAUTH, phase 1 authenticates with XAUTH_INIT_PSK instead of the plain PSK.
 */
export function parseIkeProposals(
  p: Problems,
  at: string,
  v: unknown,
  opts: { allowWeak: boolean; lifetimeSeconds: number; xauth: boolean; authMethod?: number },
): IkeProposal[] {
  const ike: IkeProposal[] = [];
  // a certificate's method (config/auth.ts) already says whether XAUTH follows
  const authMethod = opts.authMethod ?? (opts.xauth ? XAUTH_INIT_PSK : undefined);
  for (const [where, text] of proposalTexts(p, at, v, DEFAULT_IKE_PROPOSALS)) {
    const r = parseIkeProposal(text, { allowWeak: opts.allowWeak, lifetimeSeconds: opts.lifetimeSeconds, ...(authMethod !== undefined ? { authMethod } : {}) });
    if (r.ok) ike.push(...r.value);
    else p.error(where, r.error);
  }
  return ike;
}

/** `esp`: the phase 2 (Quick Mode) proposals; weak and NULL algorithms only when the connection allows them. */
export function parseEspProposals(p: Problems, at: string, v: unknown, opts: { allowWeak: boolean; allowNull: boolean }): EspProposal[] {
  const esp: EspProposal[] = [];
  for (const [where, text] of proposalTexts(p, at, v, DEFAULT_ESP_PROPOSALS)) {
    const r = parseEspProposal(text, { allowWeak: opts.allowWeak, allowNull: opts.allowNull });
    if (r.ok) esp.push(...r.value);
    else p.error(where, r.error);
  }
  return esp;
}

/**
 * `sha256_96`: HMAC-SHA-256 child SAs use a 96-bit ICV (withSha256Truncated96), for peers with that old bug
 * (Android 6). Not negotiated: the peer must do the same, or every ESP packet fails its integrity check.
 */
export function sha256Truncation(p: Problems, at: string, v: unknown, esp: EspProposal[]): EspProposal[] {
  if (!boolean(p, at, v, false)) return esp;
  const truncated = esp.map(withSha256Truncated96);
  if (truncated.every((e, i) => e === esp[i])) p.warn(at, 'no esp proposal uses HMAC-SHA-256 (e.g. aes128-sha256): it changes nothing');
  return truncated;
}

/**
 * `pfs`: whether Quick Mode carries a KE payload (RFC 2409 5.5), checked against the esp proposals. A group
 * name here fills in the proposals that name none; a group in an esp proposal turns PFS on by itself.
 */
export function parsePfs(p: Problems, at: string, v: unknown, esp: EspProposal[], allowWeak: boolean): boolean {
  const withGroup = esp.filter((e) => e.pfsGroup !== undefined).length;
  if (v === undefined) {
    if (withGroup > 0 && withGroup < esp.length) {
      p.error(at, 'missing, and some esp proposals name a DH group while others do not: set pfs: true (the others use the IKE group) or name a group in each');
    }
    return withGroup > 0;
  }
  if (v === false) {
    if (withGroup > 0) p.error(at, 'is false but an esp proposal names a DH group (which turns PFS on); remove one of them');
    return false;
  }
  if (v === true) return true;
  if (typeof v === 'string') {
    const keywords = SUPPORTED_DH_GROUPS.map((g) => dhGroupInfo(g)!.keyword);
    const id = SUPPORTED_DH_GROUPS.find((g) => dhGroupInfo(g)!.keyword === v.toLowerCase());
    if (id === undefined) {
      const hint = closest(v, keywords);
      return p.error(at, `unknown DH group '${v}'${hint ? ` (did you mean '${hint}'?)` : ''}; one of ${keywords.join(', ')}`) ?? false;
    }
    if (dhGroupInfo(id)!.weak && !allowWeak) return p.error(at, `${v} is a weak DH group; set allowWeak to use it`) ?? false;
    for (const e of esp) if (e.pfsGroup === undefined) e.pfsGroup = id as DhGroupId;
    return true;
  }
  return p.error(at, `must be true, false or a DH group like "modp2048", ${got(v)}`) ?? false;
}
