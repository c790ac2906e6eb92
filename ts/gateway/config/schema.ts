// The configuration file as a schema (TypeBox: a JSON Schema document and its TypeScript type from one
// definition). `GatewayConfigInput` is what a TypeScript embedder writes (a typo in a key or an enum value is a
// compile error: see defineConfig); `config.schema.json` at the package root is the same schema for editors
// (VS Code: "$schema": "./node_modules/ikev1-engine/config.schema.json", or json.schemas). The validation that
// loads a file stays parseConfig(): its messages name the key and suggest the fix, which a schema validator's
// do not; test/gateway/config-schema.test.ts keeps the two in step (the same keys at every level, every
// example valid).
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { MAX_WORKERS } from './dataplane.js';

const Duration = Type.Union([Type.String({ pattern: '^\\s*\\d+(\\.\\d+)?\\s*[smhd]?\\s*$' }), Type.Number({ minimum: 0 })], {
  description: "'30s', '15m', '8h', '1d', or a number of seconds",
});
const StringOrList = (description: string) => Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })], { description });
const Port = Type.Integer({ minimum: 1, maximum: 65535 });
const Comment = { _comment: Type.Optional(Type.Unknown({ description: 'ignored: JSON has no comments' })) };
const strict = <T extends Record<string, TSchema>>(properties: T, description?: string) =>
  Type.Object({ ...properties, ...Comment }, { additionalProperties: false, ...(description ? { description } : {}) });

const Auth = strict(
  {
    psk: Type.Optional(Type.String({ description: 'the pre-shared key; 0x... for hex' })),
    pskEnv: Type.Optional(Type.String({ description: 'name of an environment variable holding the key' })),
    pskFile: Type.Optional(Type.String({ description: 'a file holding the key (relative to the config file), mode 0600' })),
    allowAggressivePsk: Type.Optional(Type.Boolean({ description: 'accept Aggressive Mode with a PSK (its hash travels in clear)' })),
    cert: Type.Optional(Type.String({ description: 'our certificate (PEM), intermediates after it' })),
    key: Type.Optional(Type.String({ description: 'its private key (PEM), mode 0600' })),
    ca: Type.Optional(StringOrList('trust anchors: CA certificate files, or a directory of them')),
    crl: Type.Optional(StringOrList('CRL files (PEM)')),
    sendChain: Type.Optional(Type.Boolean({ description: 'send the intermediates after our certificate (default true)' })),
  },
  'how we authenticate: a pre-shared key (exactly one of psk, pskEnv, pskFile), or certificates (cert + key + ca; ca alone: a hybrid client)',
);

const Xauth = strict(
  {
    users: Type.Optional(Type.String({ description: 'server: the user file (ike passwd USER)' })),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 })),
    blockAfter: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    blockFor: Type.Optional(Duration),
    user: Type.Optional(Type.String({ description: 'client: the user name' })),
    password: Type.Optional(Type.String()),
    passwordEnv: Type.Optional(Type.String()),
    passwordFile: Type.Optional(Type.String()),
  },
  'XAUTH server ("users") or client ("user" and a password)',
);

const ModeConfig = strict(
  {
    pool: Type.Optional(Type.String({ description: 'a.b.c.d/n or a.b.c.d-e.f.g.h' })),
    netmask: Type.Optional(StringOrList('netmask given to clients')),
    dns: Type.Optional(StringOrList('DNS server addresses')),
    nbns: Type.Optional(StringOrList('NetBIOS name server addresses')),
    splitInclude: Type.Optional(StringOrList('subnets sent through the tunnel (Unity split include)')),
    banner: Type.Optional(Type.String()),
    mode: Type.Optional(Type.Union([Type.Literal('pull'), Type.Literal('push')])),
    client: Type.Optional(Type.Union([Type.Literal('pull'), Type.Literal('push')], { description: 'a client: pull or receive a push' })),
  },
  'Mode-Config server (pool, dns, ...) or client ("client")',
);

const Connection = strict({
  remote: Type.String({ description: 'the peer\'s address, or "%any" (responder only)' }),
  remotePort: Type.Optional(Port),
  remoteNattPort: Type.Optional(Port),
  local: Type.Optional(Type.String({ description: 'our address (listen.address, or a concrete one when that is 0.0.0.0 / ::)' })),
  mode: Type.Optional(Type.Union([Type.Literal('main'), Type.Literal('aggressive')])),
  auth: Auth,
  localId: Type.Optional(Type.String({ description: 'an address, @fqdn, user@fqdn, or keyid:...' })),
  remoteId: Type.Optional(Type.String({ description: 'as localId, or "%any"' })),
  ike: Type.Optional(StringOrList('phase 1 proposals, e.g. "aes128-sha256-modp2048"')),
  esp: Type.Optional(StringOrList('phase 2 proposals, e.g. "aes128gcm16", "aes256-sha256-modp2048"')),
  pfs: Type.Optional(Type.Union([Type.Boolean(), Type.String({ description: 'a DH group such as "modp2048"' })])),
  localTs: Type.Optional(StringOrList('our side\'s traffic: addresses, subnets, ranges, or "%dynamic"; a "[protocol/port]" suffix such as "%dynamic[udp/1701]" restricts it')),
  remoteTs: Type.Optional(StringOrList('the peer\'s traffic, as localTs')),
  type: Type.Optional(Type.Union([Type.Literal('tunnel'), Type.Literal('transport')], { description: 'IPsec mode of the child SAs; transport: host to host, selectors %dynamic' })),
  lifetime: Type.Optional(strict({ ike: Type.Optional(Duration), esp: Type.Optional(Duration), espKilobytes: Type.Optional(Type.Integer({ minimum: 1 })) })),
  dpd: Type.Optional(
    strict({
      delay: Type.Optional(Duration),
      timeout: Type.Optional(Duration),
      action: Type.Optional(Type.Union([Type.Literal('clear'), Type.Literal('restart')], { description: 'when the peer is dead: clear, or restart (set it up again)' })),
    }),
  ),
  unique: Type.Optional(Type.Union([Type.Literal('no'), Type.Literal('never')], { description: 'no (default): a new ISAKMP SA with the same peer takes over the children of the older ones; never: every ISAKMP SA stands alone (strongSwan unique = never)' })),
  closeAction: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('restart')], { description: "when the peer deletes the connection's last child SA: none, or restart" })),
  encap: Type.Optional(Type.Boolean({ description: 'force UDP encapsulation (NAT-T) without a NAT' })),
  natKeepalive: Type.Optional(Duration),
  initiate: Type.Optional(Type.Boolean()),
  retransmit: Type.Optional(strict({ tries: Type.Optional(Type.Integer({ minimum: 0 })), timeout: Type.Optional(Duration), factor: Type.Optional(Type.Number({ minimum: 1 })) })),
  selection: Type.Optional(Type.Union([Type.Literal('responder'), Type.Literal('initiator')])),
  keylog: Type.Optional(Type.Boolean({ description: 'write session keys for Wireshark (debugging only)' })),
  allowWeak: Type.Optional(Type.Boolean({ description: 'allow DES, 3DES, MD5, MODP 768 / 1024' })),
  allowNull: Type.Optional(Type.Boolean({ description: 'allow ESP NULL encryption' })),
  sha256_96: Type.Optional(Type.Boolean({ description: 'HMAC-SHA-256 child SAs use a 96-bit ICV, as Android 6 and old Linux kernels do (not negotiated: the peer must do the same; strongSwan sha256_96, Libreswan sha2-truncbug)' })),
  remoteAuth: Type.Optional(Type.Union([Type.Literal('cert'), Type.Literal('xauth')], { description: 'how the peer authenticates when it differs from us: xauth = hybrid (the peer only with XAUTH)' })),
  fragmentation: Type.Optional(Type.Union([Type.Literal('yes'), Type.Literal('no'), Type.Literal('force')], { description: 'IKE fragmentation (vendor ID + payload 132): yes (default), no, force' })),
  fragmentSize: Type.Optional(Type.Integer({ minimum: 576, maximum: 65000, description: 'fragments are cut at this size (default 1280)' })),
  xauth: Type.Optional(Xauth),
  modeConfig: Type.Optional(ModeConfig),
});

export const GatewayConfigSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    listen: Type.Optional(strict({ address: Type.Optional(Type.String()), port: Type.Optional(Port), nattPort: Type.Optional(Port) })),
    dataplane: Type.Optional(strict({ tun: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,15}$' })), mtu: Type.Optional(Type.Integer({ minimum: 576, maximum: 65535 })), offload: Type.Optional(Type.Boolean()), workers: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_WORKERS, description: 'native worker threads (default: the cores)' })) })),
    limits: Type.Optional(
      strict(
        {
          halfOpen: Type.Optional(Type.Integer({ minimum: 1, description: 'half-open phase 1 exchanges kept at most' })),
          halfOpenPerPeer: Type.Optional(Type.Integer({ minimum: 1 })),
          busyThreshold: Type.Optional(Type.Integer({ minimum: 0, description: 'half-open count where busy mode starts' })),
          busyHalfOpenPerPeer: Type.Optional(Type.Integer({ minimum: 1 })),
          busyNewPerSecond: Type.Optional(Type.Integer({ minimum: 0, description: 'message 1s of unknown sources answered per second in busy mode' })),
          busyAggressivePerSecond: Type.Optional(Type.Integer({ minimum: 0 })),
          recentSeconds: Type.Optional(Duration),
          errors: Type.Optional(strict({ perSource: Type.Optional(Type.Integer({ minimum: 0 })), perKind: Type.Optional(Type.Integer({ minimum: 0 })), window: Type.Optional(Duration) })),
        },
        'message 1 admission under load and the error-event limits (README, hardening)',
      ),
    ),
    metrics: Type.Optional(strict({ listen: Type.Optional(Type.String({ description: 'ADDRESS:PORT, e.g. 127.0.0.1:9464' })) })),
    connections: Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }), Connection, { description: 'named connections, tried in file order' }),
    ...Comment,
  },
  { additionalProperties: false, title: 'ikev1-engine gateway configuration' },
);

/** The configuration file's shape, as TypeScript: what parseConfig() takes from a TypeScript embedder. */
export type GatewayConfigInput = Static<typeof GatewayConfigSchema>;
export type ConnectionConfigInput = Static<typeof Connection>;

/** Identity, typed: `parseConfig(defineConfig({ ... }), opts)` catches a misspelt key at compile time. */
export function defineConfig(config: GatewayConfigInput): GatewayConfigInput {
  return config;
}

/** config.schema.json as written by `npm run schema` (draft 2020-12 is what editors' JSON support reads). */
export function schemaDocument(): string {
  return JSON.stringify({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...GatewayConfigSchema }, null, 2) + '\n';
}
