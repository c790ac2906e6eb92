// Reads the keys strongSwan's charon writes to its log at `ike = 4` / `chd = 4`.
//
// A logged value is a header line followed by hex dump lines, from one worker thread:
//   07:31:03 07[IKE] <t|1> SKEYID_d => 20 bytes @ 0x7ffbd40028c0
//   07:31:03 07[IKE] <t|1>    0: 49 C8 15 BB 4C 5B 09 98 30 B6 AC D7 0A 5D E7 A5  I...L[..0....]..
//   07:31:03 07[IKE] <t|1>   16: 39 DD AC 0A                                      9...
// Lines of other threads can come in between, so partial dumps are kept per thread.
// `<t|1>` is the connection name and the IKE SA's unique id; everything is grouped by that id.

export interface CharonEspSa {
  direction: 'in' | 'out';
  /** SPI as 8 lowercase hex digits */
  spi: string;
  src: string;
  dst: string;
  /** keys protecting this SA (hex); empty when not logged */
  encKey: string;
  integKey: string;
  /** strongSwan names, e.g. AES_CBC_128 and HMAC_SHA1_96 */
  encAlg?: string;
  integAlg?: string;
}

export interface CharonChildKeys {
  /** selected ESP proposal as strongSwan prints it, e.g. AES_CBC_128/HMAC_SHA1_96/MODP_2048/NO_EXT_SEQ */
  proposal?: string;
  /** g^xy of the Quick Mode (PFS) exchange, when there was one */
  dhSecret?: string;
  /** KEYMAT input of the initiator->responder SA ([g(qm)^xy] | protocol | SPI | Ni_b | Nr_b) */
  initiatorSeed?: string;
  responderSeed?: string;
  /** SPI (8 hex) of the SA carrying initiator -> responder traffic (it is inside initiatorSeed) */
  spiI?: string;
  /** SPI of the SA carrying responder -> initiator traffic */
  spiR?: string;
  encI?: string;
  encR?: string;
  integI?: string;
  integR?: string;
  /** the two SAs as this daemon installed them, with their keys */
  sas: CharonEspSa[];
}

export interface CharonIkeKeys {
  /** charon's IKE SA unique id (the number in `<t|1>`) */
  uniqueId: number;
  name?: string;
  /** initiator / responder cookie (IKE SPIs), 16 hex each, when the log shows them */
  cookieI?: string;
  cookieR?: string;
  proposal?: string;
  /** g^xy */
  dhSecret?: string;
  skeyid?: string;
  skeyidD?: string;
  skeyidA?: string;
  skeyidE?: string;
  /** the phase 1 encryption key Ka */
  ka?: string;
  /** phase 1 IV: hash(g^xi | g^xr), truncated to the cipher block */
  initialIv?: string;
  /** "next IV for MID n" values in log order (phase 1 is MID 0) */
  ivs: { mid: number; iv: string }[];
  established: boolean;
  children: CharonChildKeys[];
}

// the name is missing (`<1>`) while a responder has not picked its config yet
const LINE_RE = /(\d+)\[(\w+)\] <(?:([^>|]*)\|)?(\d+)> (.*)$/;
const DUMP_HDR_RE = /^(.*) => (\d+) bytes @ 0x[0-9a-fA-F]+$/;
const DUMP_LINE_RE = /^\s*(\d+): ((?:[0-9A-F]{2} ?){1,16})/;
const SPI_RE = /^\s*SPI 0x([0-9a-f]+), src (\S+) dst (\S+)/;
const IV_LABEL_RE = /^next IV for MID (\d+)$/;

interface Pending {
  label: string;
  n: number;
  data: number[];
  uid: number;
}

/** Parses a charon log (text) into one entry per IKE SA, in the order they first appear. */
export function parseCharonKeys(text: string): CharonIkeKeys[] {
  const sas = new Map<number, CharonIkeKeys>();
  const pending = new Map<string, Pending>();
  // a CHILD_SA's values arrive over several lines; it is complete once both SAs were added
  const building = new Map<number, CharonChildKeys>();
  const lastEspProposal = new Map<number, string>();
  const lastDir = new Map<number, 'in' | 'out'>();

  const get = (uid: number, name: string): CharonIkeKeys => {
    let sa = sas.get(uid);
    if (!sa) {
      sa = { uniqueId: uid, ivs: [], established: false, children: [] };
      sas.set(uid, sa);
    }
    if (name && !sa.name) sa.name = name;
    return sa;
  };
  const child = (uid: number): CharonChildKeys => {
    let c = building.get(uid);
    if (!c) {
      c = { sas: [] };
      building.set(uid, c);
    }
    return c;
  };

  const finish = (p: Pending) => {
    const sa = sas.get(p.uid)!;
    const hex = Buffer.from(p.data.slice(0, p.n)).toString('hex');
    const ivm = IV_LABEL_RE.exec(p.label);
    if (ivm) {
      sa.ivs.push({ mid: Number(ivm[1]), iv: hex });
      return;
    }
    switch (p.label) {
      case 'natd_chunk':
        // NAT-D hash input: CKY-I | CKY-R | IP | port
        if (!sa.cookieI && p.n >= 16) {
          sa.cookieI = hex.slice(0, 16);
          sa.cookieR = hex.slice(16, 32);
        }
        break;
      case 'shared Diffie Hellman secret': sa.dhSecret = hex; break;
      case 'SKEYID': sa.skeyid = hex; break;
      case 'SKEYID_d': sa.skeyidD = hex; break;
      case 'SKEYID_a': sa.skeyidA = hex; break;
      case 'SKEYID_e': sa.skeyidE = hex; break;
      case 'encryption key Ka': sa.ka = hex; break;
      case 'initial IV': sa.initialIv = hex; break;
      case 'DH secret': child(p.uid).dhSecret = hex; break;
      case 'initiator SA seed': {
        const c = child(p.uid);
        c.initiatorSeed = hex;
        c.proposal = lastEspProposal.get(p.uid);
        c.spiI = seedSpi(hex, c.dhSecret);
        break;
      }
      case 'responder SA seed': {
        const c = child(p.uid);
        c.responderSeed = hex;
        c.spiR = seedSpi(hex, c.dhSecret);
        break;
      }
      case 'encryption initiator key': child(p.uid).encI = hex; break;
      case 'encryption responder key': child(p.uid).encR = hex; break;
      case 'integrity initiator key': child(p.uid).integI = hex; break;
      case 'integrity responder key': child(p.uid).integR = hex; break;
      default: break;
    }
  };

  for (const raw of text.split('\n')) {
    const m = LINE_RE.exec(raw);
    if (!m) continue;
    const [, thread, , name, uidStr, body] = m as unknown as [string, string, string, string, string, string];
    const uid = Number(uidStr);
    const sa = get(uid, name ?? '');
    const pend = pending.get(thread);
    const dm = pend ? DUMP_LINE_RE.exec(body) : null;
    if (pend && dm) {
      for (const h of dm[2]!.trim().split(' ')) pend.data.push(parseInt(h, 16));
      if (pend.data.length >= pend.n) {
        finish(pend);
        pending.delete(thread);
      }
      continue;
    }
    const hm = DUMP_HDR_RE.exec(body);
    if (hm) {
      const p: Pending = { label: hm[1]!.trim(), n: Number(hm[2]), data: [], uid };
      if (p.n === 0) finish(p);
      else pending.set(thread, p);
      continue;
    }
    if (body.startsWith('selected proposal: IKE:')) sa.proposal = body.slice('selected proposal: IKE:'.length);
    else if (body.startsWith('selected proposal: ESP:')) lastEspProposal.set(uid, body.slice('selected proposal: ESP:'.length));
    else if (body.startsWith('adding inbound ESP SA')) lastDir.set(uid, 'in');
    else if (body.startsWith('adding outbound ESP SA')) lastDir.set(uid, 'out');
    else if (/IKE_SA \S+ state change: \S+ => ESTABLISHED/.test(body)) sa.established = true;
    else {
      const sm = SPI_RE.exec(body);
      if (sm && building.has(uid)) {
        const c = building.get(uid)!;
        const spi = sm[1]!.padStart(8, '0');
        const mine = spi === c.spiI ? 'I' : spi === c.spiR ? 'R' : undefined;
        const [enc, integ] = espAlgs(c.proposal);
        c.sas.push({
          direction: lastDir.get(uid) ?? 'in',
          spi,
          src: sm[2]!,
          dst: sm[3]!,
          encKey: mine === 'I' ? (c.encI ?? '') : mine === 'R' ? (c.encR ?? '') : '',
          integKey: mine === 'I' ? (c.integI ?? '') : mine === 'R' ? (c.integR ?? '') : '',
          encAlg: enc,
          integAlg: integ,
        });
        if (c.sas.length === 2) {
          sa.children.push(c);
          building.delete(uid);
        }
      }
    }
  }
  return [...sas.values()].filter((s) => s.ka || s.skeyid || s.children.length || s.cookieI);
}

/** The SPI inside a KEYMAT seed: [g^xy (PFS)] | protocol (1 byte) | SPI (4 bytes) | Ni_b | Nr_b. */
function seedSpi(seedHex: string, dhHex: string | undefined): string | undefined {
  const off = (dhHex ? dhHex.length : 0) + 2;
  if (seedHex.length < off + 8) return undefined;
  return seedHex.slice(off, off + 8);
}

function espAlgs(proposal: string | undefined): [string | undefined, string | undefined] {
  if (!proposal) return [undefined, undefined];
  const parts = proposal.split('/');
  return [parts[0], parts.slice(1).find((p) => p.startsWith('HMAC_') || p.startsWith('AES_XCBC') || p.startsWith('AES_CMAC'))];
}
