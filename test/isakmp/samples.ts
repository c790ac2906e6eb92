// Sample messages and fixture loading shared by the isakmp tests (not a test file itself).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AuthMethod,
  DOI,
  EncapsulationMode,
  EspTransformId,
  ExchangeType,
  GroupDescription,
  IdType,
  IkeAttr,
  IkeEncr,
  IkeHash,
  IkeTransformId,
  IpsecAttr,
  ISAKMP_VERSION,
  LifeType,
  ModeCfgAttr,
  ModeCfgType,
  NotifyType,
  ProtocolId,
  Situation,
  lifeValueAttr,
  tlv,
  tv,
} from '../../ts/isakmp/index.js';
import type { IsakmpHeader, Payload, Proposal, SaPayload } from '../../ts/isakmp/index.js';

/** Repository root, from dist/test/isakmp/ (compiled) — three levels up. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

export function header(exchangeType: number = ExchangeType.IDENTITY_PROTECTION, flags = 0, messageId = 0): IsakmpHeader {
  return {
    initiatorCookie: hex('0102030405060708'),
    responderCookie: hex('1112131415161718'),
    nextPayload: 0,
    version: ISAKMP_VERSION,
    exchangeType,
    flags,
    messageId,
    length: 0,
  };
}

export function ikeProposal(n: number, encr: number = IkeEncr.AES_CBC, keyLength = 256): Proposal {
  return {
    number: n,
    protocolId: ProtocolId.ISAKMP,
    spi: Buffer.alloc(0),
    transforms: [
      {
        number: 1,
        transformId: IkeTransformId.KEY_IKE,
        attributes: [
          tv(IkeAttr.ENCRYPTION_ALGORITHM, encr),
          tv(IkeAttr.KEY_LENGTH, keyLength),
          tv(IkeAttr.HASH_ALGORITHM, IkeHash.SHA2_256),
          tv(IkeAttr.AUTHENTICATION_METHOD, AuthMethod.PRE_SHARED_KEY),
          tv(IkeAttr.GROUP_DESCRIPTION, GroupDescription.MODP_2048),
          tv(IkeAttr.LIFE_TYPE, LifeType.SECONDS),
          lifeValueAttr(IkeAttr.LIFE_DURATION, 86400), // 4-byte TLV
        ],
      },
    ],
  };
}

export function espProposal(n: number, spi: number): Proposal {
  const s = Buffer.alloc(4);
  s.writeUInt32BE(spi);
  return {
    number: n,
    protocolId: ProtocolId.IPSEC_ESP,
    spi: s,
    transforms: [
      {
        number: 1,
        transformId: EspTransformId.ESP_AES_CBC,
        attributes: [
          tv(IpsecAttr.SA_LIFE_TYPE, LifeType.SECONDS),
          tv(IpsecAttr.SA_LIFE_DURATION, 3600),
          tv(IpsecAttr.ENCAPSULATION_MODE, EncapsulationMode.TUNNEL),
          tv(IpsecAttr.AUTHENTICATION_ALGORITHM, 5),
          tv(IpsecAttr.KEY_LENGTH, 128),
          tv(IpsecAttr.GROUP_DESCRIPTION, GroupDescription.MODP_2048),
        ],
      },
      {
        number: 2,
        transformId: EspTransformId.ESP_AES_GCM_16,
        attributes: [tv(IpsecAttr.ENCAPSULATION_MODE, EncapsulationMode.TUNNEL), tv(IpsecAttr.KEY_LENGTH, 256)],
      },
    ],
  };
}

export function saPayload(proposals: Proposal[]): SaPayload {
  const situation = Buffer.alloc(4);
  situation.writeUInt32BE(Situation.SIT_IDENTITY_ONLY);
  return { type: 1, doi: DOI.IPSEC, situation, proposals };
}

/** Main Mode message 1 with `n` proposals (the benchmark's first case). */
export function mainMode1(n = 8): { header: IsakmpHeader; payloads: Payload[] } {
  const proposals: Proposal[] = [];
  for (let i = 0; i < n; i++) proposals.push(ikeProposal(i + 1, i % 2 === 0 ? IkeEncr.AES_CBC : IkeEncr['3DES_CBC'], 128 + 64 * (i % 3)));
  return {
    header: header(ExchangeType.IDENTITY_PROTECTION),
    payloads: [
      saPayload(proposals),
      { type: 13, data: hex('4a131c81070358455c5728f20e95452f') }, // RFC 3947 NAT-T vendor ID
      { type: 13, data: hex('afcad71368a1f1c96b8696fc77570100') }, // RFC 3706 DPD vendor ID
    ],
  };
}

/** Quick Mode message 1 body: HASH, SA (2 proposals), NONCE, KE (256 bytes), IDci, IDcr. */
export function quickMode1(): { header: IsakmpHeader; payloads: Payload[] } {
  return {
    header: header(ExchangeType.QUICK_MODE, 0, 0x12345678), // flags 0: the chain in clear (as after decryption)
    payloads: [
      { type: 8, data: Buffer.alloc(32, 0xaa) },
      saPayload([espProposal(1, 0xc0ffee01), espProposal(2, 0xc0ffee02)]),
      { type: 10, data: Buffer.alloc(32, 0x5a) },
      { type: 4, data: Buffer.alloc(256, 0x77) },
      { type: 5, idType: IdType.IPV4_ADDR_SUBNET, protocolId: 0, port: 0, data: hex('0a010000ffffff00') },
      { type: 5, idType: IdType.IPV4_ADDR_SUBNET, protocolId: 0, port: 0, data: hex('0a020000ffffff00') },
    ],
  };
}

/** One payload of every type this codec knows, each attribute form included. */
export function everyPayload(): Payload[] {
  return [
    saPayload([ikeProposal(1), espProposal(2, 0xdeadbeef)]),
    { type: 4, data: Buffer.alloc(128, 1) },
    { type: 5, idType: IdType.FQDN, protocolId: 17, port: 500, data: Buffer.from('vpn.example.com') },
    { type: 6, encoding: 4, data: Buffer.alloc(300, 0x30) },
    { type: 7, encoding: 4, data: Buffer.alloc(0) },
    { type: 8, data: Buffer.alloc(20, 2) },
    { type: 9, data: Buffer.alloc(64, 3) },
    { type: 10, data: Buffer.alloc(16, 4) },
    { type: 11, doi: DOI.IPSEC, protocolId: ProtocolId.ISAKMP, notifyType: NotifyType.R_U_THERE, spi: Buffer.alloc(16, 5), data: hex('00000007') },
    { type: 11, doi: DOI.IPSEC, protocolId: ProtocolId.IPSEC_ESP, notifyType: NotifyType.RESPONDER_LIFETIME, spi: hex('01020304'), data: hex('800b0001000c000400000e10') },
    { type: 12, doi: DOI.IPSEC, protocolId: ProtocolId.IPSEC_ESP, spiSize: 4, spis: [hex('01020304'), hex('05060708')] },
    { type: 12, doi: DOI.IPSEC, protocolId: ProtocolId.ISAKMP, spiSize: 16, spis: [] },
    { type: 13, data: hex('afcad71368a1f1c96b8696fc77570100') },
    {
      type: 14,
      cfgType: ModeCfgType.CFG_REPLY,
      identifier: 0x1234,
      attributes: [
        tlv(ModeCfgAttr.INTERNAL_IP4_ADDRESS, hex('0a000001')),
        tlv(ModeCfgAttr.INTERNAL_IP4_DNS, Buffer.alloc(0)),
        tv(ModeCfgAttr.XAUTH_TYPE, 0),
        tlv(ModeCfgAttr.UNITY_BANNER, Buffer.from('welcome')),
      ],
    },
    { type: 20, data: Buffer.alloc(20, 6) },
    { type: 130, data: Buffer.alloc(16, 7) },
    { type: 21, idType: IdType.IPV4_ADDR, data: hex('c0a80001') },
    { type: 131, idType: IdType.IPV6_ADDR, data: Buffer.alloc(16, 8) },
    { type: 132, fragmentId: 7, fragmentNumber: 2, flags: 1, data: Buffer.alloc(50, 9) },
    { type: 200, critical: false, data: hex('cafe') }, // private-use type we do not know: kept
  ];
}

/** Wireshark capture fixture (test/fixtures/captures/ikev1_capture_wireshark_certs.json). */
export interface CaptureMessage {
  frame: number;
  exchangeType: number;
  flags: number;
  length: number;
  encrypted: boolean;
  isakmp: string;
  payloads?: string[];
}
export interface WiresharkCapture {
  messages: CaptureMessage[];
  derivedHereAndVerified: Record<string, { plaintextWithPadding?: string; payloads?: string[]; paddingBytes?: number; payloadBytes?: number; frame?: number }>;
  otherCapturesNoKeys: { mainMode: { messages: CaptureMessage[] }; aggressiveMode: { messages: CaptureMessage[] } };
}
export function loadWiresharkCapture(): WiresharkCapture {
  return JSON.parse(readFileSync(path.join(repoRoot, 'test/fixtures/captures/ikev1_capture_wireshark_certs.json'), 'utf8')) as WiresharkCapture;
}

/** Every clear message of the captures plus every decrypted body re-wrapped as a clear message: fuzz seeds. */
export function captureSeeds(): Buffer[] {
  const c = loadWiresharkCapture();
  const seeds: Buffer[] = [];
  for (const m of [...c.messages, ...c.otherCapturesNoKeys.mainMode.messages, ...c.otherCapturesNoKeys.aggressiveMode.messages]) {
    seeds.push(hex(m.isakmp));
  }
  const wrap = (first: number, exch: number, body: Buffer): Buffer => {
    const h = Buffer.from(seeds[0]!.subarray(0, 28));
    h[16] = first;
    h[18] = exch;
    h[19] = 0;
    h.writeUInt32BE(28 + body.length, 24);
    return Buffer.concat([h, body]);
  };
  const d = c.derivedHereAndVerified;
  seeds.push(wrap(5, 2, hex(d['message5']!.plaintextWithPadding!).subarray(0, d['message5']!.payloadBytes)));
  seeds.push(wrap(5, 2, hex(d['message6']!.plaintextWithPadding!).subarray(0, d['message6']!.payloadBytes)));
  seeds.push(wrap(8, 32, hex(d['quickMode1']!.plaintextWithPadding!).subarray(0, d['quickMode1']!.payloadBytes)));
  return seeds;
}
