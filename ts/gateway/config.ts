// The gateway configuration: a JSON file -> a typed, normalised GatewayConfig, or every problem found, one
// line each, naming the key path. Pure apart from reading the file and an optional PSK file: no sockets.
// The file format is documented in examples/README.md.
import path from 'node:path';
import { inspect } from 'node:util';
import { dhGroupInfo } from '../crypto/index.js';
import type { EspProposal } from '../ike/esp-proposals.js';
import { DEFAULT_IKE_LIFETIME_SECONDS, type IkeProposal, type SelectionOrder } from '../ike/proposals.js';
import type { RetransmitPolicy } from '../ike/retransmit.js';
import { idToString, type Identity } from '../isakmp/index.js';
import { readSecretFile } from './config/file.js';
import { readConfigFile } from './config/read.js';
import { warnSelectorOverlaps } from './config/overlaps.js';
import { boolean, checkKeys, got, integer, join, object, oneOf, Problems, string, stringList } from './config/check.js';
import { LIMITS_ERROR_KEYS, LIMITS_KEYS, parseLimits, type LimitsConfig } from './config/limits.js';
import { parseEspProposals, parseIkeProposals, parsePfs, sha256Truncation } from './config/proposals.js';
import { checkActions, parseCloseAction, parseDpdAction, parseUnique, type CloseAction, type DpdAction, type Unique } from './config/actions.js';
import { parseFragmentation, type FragmentationConfig } from './config/fragmentation.js';
import { CERT_AUTH_KEYS, certAuthMethod, certIdentity, isCertAuth, parseCertAuth, type CertAuthConfig } from './config/auth.js';
import { MODECFG_KEYS, parseModeConfig, parseXauth, XAUTH_KEYS, type ModeConfigConfig, type XauthConfig } from './config/remote-access.js';
import { METRICS_KEYS, parseMetrics, type MetricsConfig } from './config/metrics.js';
import { DATAPLANE_KEYS, parseDataPlane, type DataPlaneConfig } from './config/dataplane.js';
import { parseSelectors, type ProtoPort } from './config/selectors.js';
import { decodePsk, isUnspecified, parseAddress, parseDuration, parseIdentity, type Address, type SelectorAddress } from './config/values.js';

export type { SelectorAddress } from './config/values.js';
export type { CertAuthConfig } from './config/auth.js';
export type { MetricsConfig } from './config/metrics.js';
export type { DataPlaneConfig } from './config/dataplane.js';
export { defineConfig, GatewayConfigSchema, type ConnectionConfigInput, type GatewayConfigInput } from './config/schema.js';
export type { EspProposal } from '../ike/esp-proposals.js';
export type { IkeProposal, SelectionOrder } from '../ike/proposals.js';

export interface ListenConfig {
  /** Local address the UDP sockets bind; '0.0.0.0' or '::' for any. */
  address: string;
  port: number;
  nattPort: number;
}

export interface PskAuth {
  /** The key bytes. The object prints and serialises as "<redacted>" so a logged config leaks nothing. */
  psk: Buffer;
  /** Where the key came from, for messages: 'psk', 'pskEnv IKE_PSK', 'pskFile /etc/ike/site-a.psk'. */
  source: string;
  allowAggressivePsk: boolean;
}

export interface ConnectionConfig {
  name: string;
  /** Our address for this connection: `local`, else listen.address; null when that is 0.0.0.0 / ::. */
  local: string | null;
  /** The peer's address, or '%any' (responder only: accept any peer that authenticates). */
  remote: string;
  remotePort: number;
  /** The peer's NAT-T port, where IKE moves when a NAT is detected or encapsulation is forced. */
  remoteNattPort: number;
  mode: 'main' | 'aggressive';
  /** A pre-shared key, or a certificate with its key and trust anchors (config/auth.ts). */
  auth: PskAuth | CertAuthConfig;
  /** 'address': our address on the SA (known once the socket is), when no concrete address is configured. */
  localId: Identity | 'address';
  /** 'any': accept whatever identity the peer sends. */
  remoteId: Identity | 'any';
  /** Phase 1 offer / acceptable set, in priority order. */
  ike: IkeProposal[];
  /** Phase 2 offer / acceptable set, in priority order. */
  esp: EspProposal[];
  /**
   * Quick Mode with a KE payload. When true, a proposal without pfsGroup uses the negotiated phase 1 group;
   * when false, no proposal has a pfsGroup.
   */
  pfs: boolean;
  /** Our / the peer's protected traffic; 'dynamic' = the tunnel endpoint's own address (host-to-host). */
  localTs: SelectorAddress[] | 'dynamic';
  remoteTs: SelectorAddress[] | 'dynamic';
  /** The protocol and port of every selector of that side (the "[udp/1701]" suffix); 0 = any. */
  localProtoPort: ProtoPort;
  remoteProtoPort: ProtoPort;
  /** IPsec mode of the child SAs: tunnel (default), or transport (host to host, e.g. L2TP/IPsec). */
  type: 'tunnel' | 'transport';
  lifetime: { ikeSeconds: number; espSeconds: number; espKilobytes?: number };
  /** delaySeconds 0 = DPD off. */
  dpd: { delaySeconds: number; timeoutSeconds: number; action: DpdAction };
  /** What to do when the peer deletes the connection (ts/gateway/config/actions.ts). */
  closeAction: CloseAction;
  /** Whether ISAKMP SAs with the same peer replace one another (ts/gateway/config/actions.ts). */
  unique: Unique;
  /** Force UDP encapsulation (NAT-T on port nattPort) even without a NAT. */
  encap: boolean;
  /** NAT keepalive interval (RFC 3948 2.3) while we are behind a NAT; 0 = off. */
  natKeepaliveSeconds: number;
  /** Start the exchange when the gateway starts (else only respond). */
  initiate: boolean;
  /** Phase 1 retransmission: tries after the first send, first timeout, backoff factor (strongSwan defaults). */
  retransmit: { tries: number; timeoutSeconds: number; factor: number };
  /** Proposal choice order when we respond, phase 1 and 2. */
  selection: SelectionOrder;
  /** Write session keys for Wireshark (debugging only). */
  keylog: boolean;
  /** Remote access (ts/gateway/config/remote-access.ts): XAUTH server or client; phase 1 then uses XAUTH_INIT_PSK. */
  xauth?: XauthConfig;
  modeConfig?: ModeConfigConfig;
  /** IKEv1 fragmentation (config/fragmentation.ts). */
  fragmentation: FragmentationConfig;
}

export interface GatewayConfig {
  listen: ListenConfig;
  dataplane?: DataPlaneConfig;
  /** The Prometheus endpoint of `ike gateway` (ts/gateway/metrics.ts): absent = none. */
  metrics?: MetricsConfig;
  /** In file order, which is the order the responder tries them in. */
  connections: ConnectionConfig[];
  /** Message 1 admission and error-event limits (config/limits.ts); absent: the defaults. */
  limits?: LimitsConfig;
  /** Problems that did not stop the load; the CLI prints them. */
  warnings: string[];
}

export type ConfigResult = { ok: true; config: GatewayConfig; warnings: string[] } | { ok: false; errors: string[]; warnings: string[] };

export interface ParseOptions {
  /** Directory that auth.pskFile paths are relative to (the config file's). */
  baseDir: string;
  /** Environment for auth.pskEnv (process.env in the CLI). */
  env: Readonly<Record<string, string | undefined>>;
}

/** The configuration is invalid; `errors` holds one line per problem, `message` is them joined. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly errors: readonly string[]) {
    super(errors.join('\n'));
  }
}

export { DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS } from './config/proposals.js';
export const DEFAULT_ESP_LIFETIME_SECONDS = 3600;

// $schema: an editor's pointer to config.schema.json, ignored here
const TOP_KEYS = ['$schema', 'listen', 'connections', 'dataplane', 'metrics', 'limits'];
const LISTEN_KEYS = ['address', 'port', 'nattPort'];
const CONNECTION_KEYS = [
  'remote', 'remotePort', 'remoteNattPort', 'local', 'mode', 'auth', 'localId', 'remoteId', 'ike', 'esp', 'pfs', 'localTs', 'remoteTs', 'type',
  'lifetime', 'dpd', 'closeAction', 'unique', 'encap', 'natKeepalive', 'initiate', 'retransmit', 'selection', 'keylog', 'allowWeak', 'allowNull',
  'xauth', 'modeConfig', 'fragmentation', 'fragmentSize', 'remoteAuth', 'sha256_96',
];
const AUTH_KEYS = ['psk', 'pskEnv', 'pskFile', 'allowAggressivePsk'];
const LIFETIME_KEYS = ['ike', 'esp', 'espKilobytes'];
const DPD_KEYS = ['delay', 'timeout', 'action'];
const RETRANSMIT_KEYS = ['tries', 'timeout', 'factor'];
/** The keys parseConfig() knows at each level (config/schema.ts must have the same: test/gateway/config-schema.test.ts). */
export const CONFIG_KEYS: Readonly<Record<string, readonly string[]>> = {
  top: TOP_KEYS, listen: LISTEN_KEYS, dataplane: DATAPLANE_KEYS, metrics: METRICS_KEYS, connection: CONNECTION_KEYS, auth: [...AUTH_KEYS, ...CERT_AUTH_KEYS],
  lifetime: LIFETIME_KEYS, dpd: DPD_KEYS, retransmit: RETRANSMIT_KEYS, xauth: XAUTH_KEYS, modeConfig: MODECFG_KEYS,
  limits: LIMITS_KEYS.filter((k) => k !== '_comment'), limitsErrors: LIMITS_ERROR_KEYS.filter((k) => k !== '_comment'),
};
const CONNECTION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const AGGRESSIVE_PSK_RISK =
  'aggressive mode with a pre-shared key sends a hash of the key in clear, so an eavesdropper can run an offline dictionary attack on the key';

/** The connection's retransmission schedule as the exchanges take it (milliseconds). */
export function retransmitPolicy(c: ConnectionConfig): RetransmitPolicy {
  return { tries: c.retransmit.tries, timeoutMs: c.retransmit.timeoutSeconds * 1000, factor: c.retransmit.factor };
}

/** Validates and normalises a parsed JSON document. Never throws; reads auth.pskFile files synchronously. */
export function parseConfig(json: unknown, opts: ParseOptions): ConfigResult {
  const p = new Problems();
  const top = object(p, '(top level)', json);
  let listen: ListenConfig = { address: '0.0.0.0', port: 500, nattPort: 4500 };
  let dataplane: DataPlaneConfig | undefined;
  let metrics: MetricsConfig | undefined;
  let limits: LimitsConfig | undefined;
  const connections: ConnectionConfig[] = [];
  if (top) {
    checkKeys(p, '', top, TOP_KEYS);
    listen = parseListen(p, top.listen);
    dataplane = parseDataPlane(p, top.dataplane);
    metrics = parseMetrics(p, top.metrics);
    limits = parseLimits(p, top.limits);
    if (top.connections === undefined) {
      p.error('connections', 'missing (an object of named connections, e.g. { "site-a": { "remote": "10.99.0.1", ... } })');
    } else {
      const all = object(p, 'connections', top.connections);
      if (all) {
        const names = Object.keys(all).filter((k) => k !== '_comment');
        if (names.length === 0) p.error('connections', 'is empty; define at least one connection');
        for (const name of names) {
          const c = parseConnection(p, name, all[name], listen, opts);
          if (c) connections.push(c);
        }
      }
    }
  }
  crossCheck(p, connections);
  if (p.errors.length > 0) return { ok: false, errors: p.errors, warnings: p.warnings };
  return { ok: true, config: { listen, ...(dataplane ? { dataplane } : {}), ...(metrics ? { metrics } : {}), ...(limits ? { limits } : {}), connections, warnings: p.warnings }, warnings: p.warnings };
}

/** Reads and validates a config file; throws ConfigError listing every problem. */
export async function loadConfig(file: string, env: ParseOptions['env'] = process.env): Promise<GatewayConfig> {
  const json = readConfigFile(file);
  if (!json.ok) throw new ConfigError(json.errors);
  const r = parseConfig(json.value, { baseDir: path.dirname(path.resolve(file)), env });
  if (!r.ok) throw new ConfigError(r.errors);
  // a key written in the file is as exposed as the file: warn as for a pskFile
  const inline = r.config.connections.find((c) => c.auth.source === 'psk');
  if (inline && json.mode !== undefined && (json.mode & 0o077) !== 0) {
    r.config.warnings.push(`${file}: holds a pre-shared key (connections.${inline.name}.auth.psk) and can be read or changed by group or others (mode ${json.mode.toString(8).padStart(4, '0')}); chmod 600 it, or use pskFile / pskEnv`);
  }
  return r.config;
}

function parseListen(p: Problems, v: unknown): ListenConfig {
  const out: ListenConfig = { address: '0.0.0.0', port: 500, nattPort: 4500 };
  if (v === undefined) return out;
  const o = object(p, 'listen', v);
  if (!o) return out;
  checkKeys(p, 'listen', o, LISTEN_KEYS);
  if (o.address !== undefined) {
    const s = string(p, 'listen.address', o.address);
    const a = s === undefined ? null : parseAddress(s);
    if (a) out.address = a.text;
    else if (s !== undefined) p.error('listen.address', `must be an IPv4 or IPv6 address (0.0.0.0 or :: for any), ${got(s)}`);
  }
  out.port = integer(p, 'listen.port', o.port, 1, 65535, 500);
  out.nattPort = integer(p, 'listen.nattPort', o.nattPort, 1, 65535, 4500);
  if (out.port === out.nattPort) p.error('listen.nattPort', `must differ from listen.port (both ${out.port})`);
  return out;
}

/** A duration in seconds within [min, max]; whole seconds unless fractional is allowed. */
function duration(p: Problems, at: string, v: unknown, fallback: number, min: number, fractional = false): number {
  if (v === undefined) return fallback;
  const d = parseDuration(v);
  if (!d.ok) return p.error(at, d.error) ?? fallback;
  if (!fractional && !Number.isInteger(d.value)) return p.error(at, `must be whole seconds, got ${d.value}s`) ?? fallback;
  if (d.value < min || d.value > 0xffffffff) return p.error(at, `must be ${min === 0 ? '0 (off)' : `at least ${min}s`} and at most 4294967295s, ${got(v)}`) ?? fallback;
  return d.value;
}

function parseConnection(p: Problems, name: string, v: unknown, listen: ListenConfig, opts: ParseOptions): ConnectionConfig | undefined {
  const at = `connections.${name}`;
  if (!CONNECTION_NAME.test(name)) p.error(at, 'connection names use letters, digits, ., _ and - (at most 64, starting with a letter or digit)');
  const o = object(p, at, v);
  if (!o) return undefined;
  const errorsBefore = p.errors.length;
  checkKeys(p, at, o, CONNECTION_KEYS);
  const k = (key: string) => join(at, key);

  const peer = parseRemote(p, k('remote'), o.remote);
  const remote = peer === '%any' ? peer : peer?.text;
  const local = parseLocal(p, k('local'), o.local, listen);
  checkAddressFamilies(p, k('remote'), peer, local);
  const remotePort = integer(p, k('remotePort'), o.remotePort, 1, 65535, 500);
  const remoteNattPort = integer(p, k('remoteNattPort'), o.remoteNattPort, 1, 65535, 4500);
  const mode = oneOf(p, k('mode'), o.mode, ['main', 'aggressive'] as const, 'main');
  const allowWeak = boolean(p, k('allowWeak'), o.allowWeak, false);
  const allowNull = boolean(p, k('allowNull'), o.allowNull, false);

  const auth = parseAuth(p, k('auth'), o.auth, opts);
  const cert = auth !== undefined && 'kind' in auth ? auth : undefined;
  // with a certificate: by default we are its subject, and the peer is whoever the CAs vouch for
  const localId = (o.localId === undefined && cert && certIdentity(cert)) || parseLocalId(p, k('localId'), o.localId, local);
  const remoteId = o.remoteId === undefined && cert ? 'any' : parseRemoteId(p, k('remoteId'), o.remoteId, peer);

  const xauth = parseXauth(p, k('xauth'), o.xauth, opts);
  const modeConfig = parseModeConfig(p, k('modeConfig'), o.modeConfig);

  // Lifetimes come before the proposals: the IKE lifetime goes into every phase 1 transform.
  const lifetime = parseLifetime(p, k('lifetime'), o.lifetime);
  const ike = parseIkeProposals(p, k('ike'), o.ike, {
    allowWeak, lifetimeSeconds: lifetime.ikeSeconds, xauth: xauth !== undefined, ...(cert ? { authMethod: certAuthMethod(p, k('remoteAuth'), cert, xauth !== undefined, o.remoteAuth) } : {}),
  });
  const esp = sha256Truncation(p, k('sha256_96'), o.sha256_96, parseEspProposals(p, k('esp'), o.esp, { allowWeak, allowNull }));
  const pfs = parsePfs(p, k('pfs'), o.pfs, esp, allowWeak);

  const { ts: localTs, protoPort: localProtoPort } = parseSelectors(p, k('localTs'), o.localTs);
  const { ts: remoteTs, protoPort: remoteProtoPort } = parseSelectors(p, k('remoteTs'), o.remoteTs);
  checkSelectorFamilies(p, k('remoteTs'), localTs, remoteTs);
  const type = oneOf(p, k('type'), o.type, ['tunnel', 'transport'] as const, 'tunnel');
  if (type === 'transport' && (localTs !== 'dynamic' || remoteTs !== 'dynamic')) {
    p.error(k('type'), 'transport mode protects the two hosts\' own traffic: localTs and remoteTs must be %dynamic (with a [protocol/port] if you like)');
  }

  const dpd = parseDpd(p, k('dpd'), o.dpd);
  const closeAction = parseCloseAction(p, k('closeAction'), o.closeAction);
  checkActions(p, at, remote, closeAction, dpd.action);
  const unique = parseUnique(p, k('unique'), o.unique);
  const retransmit = parseRetransmit(p, k('retransmit'), o.retransmit);
  const encap = boolean(p, k('encap'), o.encap, false);
  const natKeepaliveSeconds = duration(p, k('natKeepalive'), o.natKeepalive, 20, 0);
  const initiate = boolean(p, k('initiate'), o.initiate, false);
  const selection = oneOf(p, k('selection'), o.selection, ['responder', 'initiator'] as const, 'responder');
  const keylog = boolean(p, k('keylog'), o.keylog, false);
  const fragmentation = parseFragmentation(p, k, o.fragmentation, o.fragmentSize);
  if (keylog) p.warn(k('keylog'), 'session keys will be written to the key log; use for debugging only');

  // Checks across keys of this connection.
  if (initiate && remote === '%any') p.error(k('initiate'), 'cannot initiate to remote "%any"; give the peer\'s address or set initiate: false');
  if (mode === 'aggressive') checkAggressiveMode(p, at, ike, auth);
  checkRemoteAccessRoles(p, at, xauth, modeConfig, initiate);
  if (p.errors.length > errorsBefore || !auth || remote === undefined) return undefined;
  return {
    name, local, remote, remotePort, remoteNattPort, mode, auth, localId, remoteId, ike, esp, pfs, localTs, remoteTs,
    localProtoPort, remoteProtoPort, type, lifetime, dpd, closeAction, unique, encap, natKeepaliveSeconds, initiate, retransmit, selection, keylog, fragmentation,
    ...(xauth ? { xauth } : {}), ...(modeConfig ? { modeConfig } : {}),
  };
}

/**
 * `remote`: the peer's address, or "%any" (a responder that accepts any peer that authenticates). Undefined when
 * missing or wrong, so that the checks built on it stay quiet.
 */
function parseRemote(p: Problems, at: string, v: unknown): Address | '%any' | undefined {
  if (v === undefined) return p.error(at, `missing (the peer's address, e.g. "10.99.0.1", or "%any" for a responder)`);
  const s = string(p, at, v);
  if (s === '%any') return s;
  const a = s === undefined ? null : parseAddress(s);
  if (a && !isUnspecified(a)) return a;
  if (s !== undefined) p.error(at, `must be the peer's IPv4 or IPv6 address or "%any" (hostnames are not resolved), ${got(s)}`);
  return undefined;
}

/**
 * `local`: our address, which can only be listen.address (the gateway sends from the address it listens on) or,
 * when that is 0.0.0.0 / ::, any concrete address. Defaults to listen.address; null when that is unspecified.
 */
function parseLocal(p: Problems, at: string, v: unknown, listen: ListenConfig): string | null {
  const listenAddr = parseAddress(listen.address)!;
  const fromListen = isUnspecified(listenAddr) ? null : listenAddr.text;
  if (v === undefined) return fromListen;
  const s = string(p, at, v);
  const a = s === undefined ? null : parseAddress(s);
  if (s !== undefined && (!a || isUnspecified(a))) p.error(at, `must be one of our IPv4 or IPv6 addresses, ${got(s)}`);
  else if (a && fromListen !== null && a.text !== fromListen) p.error(at, `${a.text} is not listen.address ${fromListen}; the gateway sends from the address it listens on`);
  else if (a) return a.text;
  return fromListen;
}

/** One socket cannot reach an IPv6 peer from an IPv4 address or the other way round. */
function checkAddressFamilies(p: Problems, at: string, peer: Address | '%any' | undefined, local: string | null): void {
  const remoteFamily = peer === '%any' ? undefined : peer?.family;
  const localFamily = local === null ? undefined : parseAddress(local)!.family;
  if (remoteFamily !== undefined && localFamily !== undefined && remoteFamily !== localFamily) {
    p.error(at, `is IPv${remoteFamily} but our address ${local} is IPv${localFamily}`);
  }
}

/** `localId`: the identity we send in IDii/IDir; by default our address, or 'address' while that is unknown. */
function parseLocalId(p: Problems, at: string, v: unknown, local: string | null): Identity | 'address' {
  const ownId = local === null ? null : parseIdentity(local);
  const fallback: Identity | 'address' = ownId?.ok ? ownId.value : 'address';
  if (v === undefined) return fallback;
  const s = string(p, at, v);
  const r = s === undefined ? undefined : parseIdentity(s);
  if (r && !r.ok) p.error(at, r.error);
  else if (r) return r.value;
  return fallback;
}

/**
 * `remoteId`: the identity the peer must send, or "%any" for whatever it sends. By default the peer's address
 * (ID_IPV4_ADDR / ID_IPV6_ADDR, RFC 2407 4.6.2.1), or any identity when the peer is "%any".
 */
function parseRemoteId(p: Problems, at: string, v: unknown, peer: Address | '%any' | undefined): Identity | 'any' {
  const fallback: Identity | 'any' = peer === undefined || peer === '%any' ? 'any' : { kind: peer.family === 6 ? 'ipv6' : 'ipv4', address: peer.text };
  if (v === undefined) return fallback;
  const s = string(p, at, v);
  if (s === '%any') return 'any';
  const r = s === undefined ? undefined : parseIdentity(s);
  if (r && !r.ok) p.error(at, r.error);
  else if (r) return r.value;
  return fallback;
}

/** A Quick Mode ID (IDci/IDcr) pair has one IP version, so localTs and remoteTs need a version in common. */
function checkSelectorFamilies(p: Problems, at: string, localTs: SelectorAddress[] | 'dynamic', remoteTs: SelectorAddress[] | 'dynamic'): void {
  const families = (ts: SelectorAddress[] | 'dynamic') => new Set(ts === 'dynamic' ? [] : ts.map((t) => (t.kind.startsWith('ipv6') ? 6 : 4)));
  const lf = families(localTs);
  const rf = families(remoteTs);
  if (lf.size > 0 && rf.size > 0 && ![...lf].some((f) => rf.has(f))) {
    p.error(at, `no selector of the same IP version as localTs (IPv${[...lf].join('/')}), so no Quick Mode could carry them`);
  }
}

/**
 * Aggressive mode (RFC 2409 5): the initiator's KE goes in the first message, before the responder chooses, so
 * only one DH group can be offered; and with a PSK the responder's HASH_R, sent in clear, allows an offline
 * dictionary attack on the key, which the configuration must accept explicitly.
 */
function checkAggressiveMode(p: Problems, at: string, ike: IkeProposal[], auth: PskAuth | CertAuthConfig | undefined): void {
  const groups = [...new Set(ike.map((x) => x.group))];
  if (groups.length > 1) {
    p.error(join(at, 'ike'), `aggressive mode can offer only one DH group: the KE payload goes in the first message, before the peer chooses; got ${groups.map((g) => dhGroupInfo(g)!.keyword).join(', ')}`);
  }
  if (auth === undefined || 'kind' in auth) return; // signatures: nothing to attack offline
  if (!auth.allowAggressivePsk) p.error(join(at, 'mode'), `${AGGRESSIVE_PSK_RISK}; set auth.allowAggressivePsk: true to accept this risk`);
  else p.warn(join(at, 'mode'), `${AGGRESSIVE_PSK_RISK}; use a long random key`);
}

/** XAUTH and mode-config roles must agree: the XAUTH server responds and gives configuration, the client asks for it. */
function checkRemoteAccessRoles(p: Problems, at: string, xauth: XauthConfig | undefined, modeConfig: ModeConfigConfig | undefined, initiate: boolean): void {
  if (xauth?.role === 'server' && initiate) p.error(join(at, 'initiate'), 'an XAUTH server only responds (XAUTH_INIT_PSK: the initiator is the client)');
  if (xauth?.role === 'client' && modeConfig?.role === 'server') p.error(join(at, 'modeConfig'), 'an XAUTH client receives its configuration: use { "client": "pull" }');
  if (xauth?.role === 'server' && modeConfig?.role === 'client') p.error(join(at, 'modeConfig'), 'an XAUTH server gives configuration: use "pool", "dns", ...');
}

function parseLifetime(p: Problems, at: string, v: unknown): ConnectionConfig['lifetime'] {
  const out: ConnectionConfig['lifetime'] = { ikeSeconds: DEFAULT_IKE_LIFETIME_SECONDS, espSeconds: DEFAULT_ESP_LIFETIME_SECONDS };
  const o = v === undefined ? undefined : object(p, at, v);
  if (!o) return out;
  checkKeys(p, at, o, LIFETIME_KEYS);
  out.ikeSeconds = duration(p, join(at, 'ike'), o.ike, out.ikeSeconds, 60);
  out.espSeconds = duration(p, join(at, 'esp'), o.esp, out.espSeconds, 60);
  if (o.espKilobytes !== undefined) out.espKilobytes = integer(p, join(at, 'espKilobytes'), o.espKilobytes, 1, 0xffffffff, 0);
  return out;
}

function parseDpd(p: Problems, at: string, v: unknown): ConnectionConfig['dpd'] {
  // strongSwan's defaults: off, 150 s for IKEv1, clear.
  const out: ConnectionConfig['dpd'] = { delaySeconds: 0, timeoutSeconds: 150, action: 'clear' };
  const o = v === undefined ? undefined : object(p, at, v);
  if (!o) return out;
  checkKeys(p, at, o, DPD_KEYS);
  out.delaySeconds = duration(p, join(at, 'delay'), o.delay, 0, 0);
  out.timeoutSeconds = duration(p, join(at, 'timeout'), o.timeout, 150, 1);
  out.action = parseDpdAction(p, join(at, 'action'), o.action);
  return out;
}

function parseRetransmit(p: Problems, at: string, v: unknown): ConnectionConfig['retransmit'] {
  const out: ConnectionConfig['retransmit'] = { tries: 5, timeoutSeconds: 4, factor: 1.8 };
  const o = v === undefined ? undefined : object(p, at, v);
  if (!o) return out;
  checkKeys(p, at, o, RETRANSMIT_KEYS);
  out.tries = integer(p, join(at, 'tries'), o.tries, 0, 100, 5);
  out.timeoutSeconds = duration(p, join(at, 'timeout'), o.timeout, 4, 0.001, true);
  if (o.factor !== undefined) {
    if (typeof o.factor !== 'number' || !(o.factor >= 1 && o.factor <= 10)) p.error(join(at, 'factor'), `must be a number 1-10, ${got(o.factor)}`);
    else out.factor = o.factor;
  }
  return out;
}

function parseAuth(p: Problems, at: string, v: unknown, opts: ParseOptions): PskAuth | CertAuthConfig | undefined {
  const sources = '"psk" (the key; "0x..." for hex), "pskEnv" (an environment variable name) or "pskFile" (a file path)';
  if (v === undefined) return p.error(at, `missing (a pre-shared key: an object with one of ${sources}; or a certificate: "cert", "key", "ca")`);
  const o = object(p, at, v);
  if (!o) return undefined;
  if (isCertAuth(o)) return parseCertAuth(p, at, o, opts.baseDir);
  checkKeys(p, at, o, AUTH_KEYS);
  const allowAggressivePsk = boolean(p, join(at, 'allowAggressivePsk'), o.allowAggressivePsk, false);
  const given = (['psk', 'pskEnv', 'pskFile'] as const).filter((s) => o[s] !== undefined);
  if (given.length === 0) return p.error(at, `no pre-shared key: set one of ${sources}`);
  if (given.length > 1) return p.error(at, `set only one of psk, pskEnv, pskFile (got ${given.join(' and ')})`);
  const key = given[0]!;
  const where = join(at, key);
  const value = string(p, where, o[key], key === 'psk');
  if (value === undefined) return undefined;
  let text: string;
  let source: string;
  if (key === 'psk') {
    [text, source] = [value, 'psk'];
  } else if (key === 'pskEnv') {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) return p.error(where, `must be the name of an environment variable (letters, digits, _), ${got(value)}`);
    // typeof, not `=== undefined`: a plain object env has inherited members such as 'constructor'.
    const e = Object.hasOwn(opts.env, value) ? opts.env[value] : undefined;
    if (typeof e !== 'string') return p.error(where, `environment variable ${value} is not set`);
    [text, source] = [e, `pskEnv ${value}`];
  } else {
    const file = path.resolve(opts.baseDir, value);
    const read = readSecretFile(file, "decoded, the key would differ from the peer's: write a binary key as hex (0x...)");
    if (!read.ok) return p.error(where, read.error);
    if (read.value.warning) p.warn(where, read.value.warning);
    [text, source] = [read.value.text, `pskFile ${file}`];
  }
  const psk = decodePsk(text);
  if (!psk.ok) return p.error(where, psk.error);
  return redacted({ psk: psk.value, source, allowAggressivePsk });
}

/** Keeps the key out of console.log / util.inspect / JSON.stringify of a config. */
function redacted(auth: PskAuth): PskAuth {
  const shown = () => ({ psk: `<redacted, ${auth.psk.length} bytes>`, source: auth.source, allowAggressivePsk: auth.allowAggressivePsk });
  Object.defineProperty(auth, 'toJSON', { value: shown, enumerable: false });
  Object.defineProperty(auth, inspect.custom, { value: () => shown(), enumerable: false });
  return auth;
}

/** Checks between connections: the same peer twice, main-mode PSK responders that cannot be told apart, selectors. */
function crossCheck(p: Problems, connections: ConnectionConfig[]): void {
  warnSelectorOverlaps(p, connections);
  const id = (x: Identity | string) => (typeof x === 'string' ? x : `${x.kind}:${idToString(x)}`);
  const seen = new Map<string, string>();
  for (const c of connections) {
    const key = `${c.remote}|${id(c.localId)}|${id(c.remoteId)}`;
    const first = seen.get(key);
    if (first !== undefined) p.warn(`connections.${c.name}`, `same remote and identities as connections.${first}; only the first will be used`);
    else seen.set(key, c.name);
  }
  // In main mode the responder must pick the PSK before it can decrypt the peer's ID, so only the address can
  // choose; two "%any" main-mode connections cannot be told apart.
  // (the offered authentication method still tells them apart: XAUTH PSK, certificates, hybrid)
  const anyMain = connections.filter((c) => c.remote === '%any' && c.mode === 'main');
  const byMethod = new Map<number | undefined, ConnectionConfig>();
  for (const c of anyMain) {
    const first = byMethod.get(c.ike[0]?.authMethod);
    if (first) p.warn(`connections.${c.name}`, `main mode picks the PSK by the peer's address before its ID is known, so with remote "%any" connections.${first.name} always wins`);
    else byMethod.set(c.ike[0]?.authMethod, c);
  }
}
