// ISAKMP codec rates: node dist/bench/codec.js [--time 1s] [--json]
// Cases: Main Mode message 1 with 8 proposals (+ 2 vendor IDs) and a Quick Mode message 1 body
// (HASH, SA with 2 ESP proposals x 2 transforms, NONCE, KE 256 bytes, IDci, IDcr), parsed and encoded.
import { Bench } from 'tinybench';
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
  ProtocolId,
  encodeMessage,
  encodePayloads,
  lifeValueAttr,
  parseMessage,
  parsePayloads,
  tv,
} from '../ts/isakmp/index.js';
import type { IsakmpHeader, Payload, Proposal } from '../ts/isakmp/index.js';
import { benchArgs, command } from './args.js';

const header = (exchangeType: number, messageId = 0): IsakmpHeader => ({
  initiatorCookie: Buffer.from('0102030405060708', 'hex'),
  responderCookie: Buffer.alloc(8),
  nextPayload: 0,
  version: ISAKMP_VERSION,
  exchangeType,
  flags: 0,
  messageId,
  length: 0,
});
const situation = Buffer.from([0, 0, 0, 1]);

function ikeProposal(n: number): Proposal {
  return {
    number: n,
    protocolId: ProtocolId.ISAKMP,
    spi: Buffer.alloc(0),
    transforms: [{
      number: 1,
      transformId: IkeTransformId.KEY_IKE,
      attributes: [
        tv(IkeAttr.ENCRYPTION_ALGORITHM, IkeEncr.AES_CBC),
        tv(IkeAttr.KEY_LENGTH, 128 + 64 * (n % 3)),
        tv(IkeAttr.HASH_ALGORITHM, IkeHash.SHA2_256),
        tv(IkeAttr.AUTHENTICATION_METHOD, AuthMethod.PRE_SHARED_KEY),
        tv(IkeAttr.GROUP_DESCRIPTION, GroupDescription.MODP_2048),
        tv(IkeAttr.LIFE_TYPE, LifeType.SECONDS),
        lifeValueAttr(IkeAttr.LIFE_DURATION, 86400),
      ],
    }],
  };
}
function espProposal(n: number): Proposal {
  return {
    number: n,
    protocolId: ProtocolId.IPSEC_ESP,
    spi: Buffer.from([0xc0, 0xff, 0xee, n]),
    transforms: [
      { number: 1, transformId: EspTransformId.ESP_AES_CBC, attributes: [tv(IpsecAttr.SA_LIFE_TYPE, 1), tv(IpsecAttr.SA_LIFE_DURATION, 3600), tv(IpsecAttr.ENCAPSULATION_MODE, EncapsulationMode.TUNNEL), tv(IpsecAttr.AUTHENTICATION_ALGORITHM, 5), tv(IpsecAttr.KEY_LENGTH, 128)] },
      { number: 2, transformId: EspTransformId.ESP_AES_GCM_16, attributes: [tv(IpsecAttr.ENCAPSULATION_MODE, EncapsulationMode.TUNNEL), tv(IpsecAttr.KEY_LENGTH, 256)] },
    ],
  };
}

const mm1: { header: IsakmpHeader; payloads: Payload[] } = {
  header: header(ExchangeType.IDENTITY_PROTECTION),
  payloads: [
    { type: 1, doi: DOI.IPSEC, situation, proposals: Array.from({ length: 8 }, (_, i) => ikeProposal(i + 1)) },
    { type: 13, data: Buffer.from('4a131c81070358455c5728f20e95452f', 'hex') },
    { type: 13, data: Buffer.from('afcad71368a1f1c96b8696fc77570100', 'hex') },
  ],
};
const qm1Payloads: Payload[] = [
  { type: 8, data: Buffer.alloc(32, 0xaa) },
  { type: 1, doi: DOI.IPSEC, situation, proposals: [espProposal(1), espProposal(2)] },
  { type: 10, data: Buffer.alloc(32, 0x5a) },
  { type: 4, data: Buffer.alloc(256, 0x77) },
  { type: 5, idType: IdType.IPV4_ADDR_SUBNET, protocolId: 0, port: 0, data: Buffer.from('0a010000ffffff00', 'hex') },
  { type: 5, idType: IdType.IPV4_ADDR_SUBNET, protocolId: 0, port: 0, data: Buffer.from('0a020000ffffff00', 'hex') },
];
const qm1 = { header: header(ExchangeType.QUICK_MODE, 0x12345678), payloads: qm1Payloads };

const mm1Bytes = encodeMessage(mm1);
const qm1Bytes = encodeMessage(qm1);
const qm1Body = Buffer.concat([encodePayloads(qm1Payloads), Buffer.alloc(4)]); // decrypted body with padding
for (const [name, r] of [['mm1', parseMessage(mm1Bytes)], ['qm1', parseMessage(qm1Bytes)], ['qm1 body', parsePayloads(8, qm1Body, 28)]] as const) {
  if (!r.ok) throw new Error(`${name} does not parse: ${r.error.message}`);
}

const ARGS = benchArgs(
  command({
    name: 'ike bench codec',
    summary: `ISAKMP parse and encode rates: a Main Mode message 1 with 8 proposals and a Quick Mode message 1
(whole, and its decrypted body), in messages per second.`,
    options: {
      time: { kind: 'duration', min: 0.001, help: 'measuring time per case (default 1s)' },
      json: { kind: 'flag', help: 'the rows as JSON instead of a table' },
    },
  }),
);
const time = (ARGS.time ?? 1) * 1000;
let sink = 0; // keeps results alive so the work is not optimised away
// Each sample runs BATCH operations so that timer overhead (~1 µs per sample) does not dominate.
const BATCH = 100;
const batch = (f: () => number) => () => { for (let i = 0; i < BATCH; i++) sink += f(); };
const bench = new Bench({ name: 'ISAKMP codec', time, warmupTime: Math.min(200, time / 4) });
bench
  .add(`parse  Main Mode 1, 8 proposals (${mm1Bytes.length} B)`, batch(() => (parseMessage(mm1Bytes).ok ? 1 : 0)))
  .add(`encode Main Mode 1, 8 proposals (${mm1Bytes.length} B)`, batch(() => encodeMessage(mm1).length))
  .add(`parse  Quick Mode 1 message (${qm1Bytes.length} B)`, batch(() => (parseMessage(qm1Bytes).ok ? 1 : 0)))
  .add(`parse  Quick Mode 1 decrypted body (${qm1Body.length} B)`, batch(() => (parsePayloads(8, qm1Body, 28).ok ? 1 : 0)))
  .add(`encode Quick Mode 1 message (${qm1Bytes.length} B)`, batch(() => encodeMessage(qm1).length))
  .add(`encode Quick Mode 1 body chain`, batch(() => encodePayloads(qm1Payloads).length));

await bench.run();
type Row = { case: string; state: string } | { case: string; msgsPerSec: number; usPerMsg: number; rmePercent: number };
const rows = bench.tasks.map((t): Row => {
  const r = t.result as { state: string; latency?: { mean: number; rme: number } };
  if (r.state !== 'completed' || !r.latency) return { case: t.name, state: r.state };
  const perMsgMs = r.latency.mean / BATCH;
  return { case: t.name, msgsPerSec: 1000 / perMsgMs, usPerMsg: perMsgMs * 1000, rmePercent: r.latency.rme };
});
if (ARGS.json) {
  console.log(JSON.stringify({ node: process.version, timeMs: time, rows }, null, 2));
} else {
  console.log(`ISAKMP codec, node ${process.version}, ${time} ms per case (sink ${sink > 0 ? 'ok' : '0'})`);
  console.table(
    rows.map((r) =>
      'msgsPerSec' in r
        ? { case: r.case, 'msgs/s': Math.round(r.msgsPerSec).toLocaleString('en-US'), 'µs/msg': r.usPerMsg.toFixed(2), '±%': r.rmePercent.toFixed(1) }
        : { case: r.case, 'msgs/s': r.state, 'µs/msg': '', '±%': '' },
    ),
  );
}
