// Checks and normalises EspSaParams once, for both implementations, so that a bad key length or window size
// gets the same TypeError / RangeError whichever one runs.
import { espGeometry, isEspAlgorithm, splitEspKeymat, type EspKeyLengths } from './algorithms.js';
import { MAX_REPLAY_WINDOW } from './replay.js';
import type { EspAlgorithm, EspEngineChoice, EspSaParams } from './types.js';

export interface ResolvedEspParams {
  spi: number;
  algorithm: EspAlgorithm;
  geometry: Readonly<EspKeyLengths>;
  outbound: boolean;
  encryptionKey: Buffer;
  integrityKey: Buffer;
  salt: Buffer;
  replayWindow: number;
  esn: boolean;
  mode: 'tunnel' | 'transport';
  udpEncapsulation: boolean;
  allowInsecure: boolean;
  initialSequence: bigint | undefined;
  engine: EspEngineChoice;
}

const ENGINES: readonly string[] = ['auto', 'evp', 'ipsec-mb'];

/** EspSaParams.engine, defaulting to the IKE_ESP_ENGINE environment variable, then 'auto'. */
function engineOf(p: EspSaParams): EspEngineChoice {
  const fromEnv = process.env.IKE_ESP_ENGINE;
  const e: unknown = p.engine ?? (fromEnv === undefined || fromEnv === '' ? 'auto' : fromEnv);
  if (typeof e !== 'string' || !ENGINES.includes(e)) {
    const where = p.engine === undefined ? ' (from IKE_ESP_ENGINE)' : '';
    throw new RangeError(`engine must be 'auto', 'evp' or 'ipsec-mb'${where}, not '${String(e)}'`);
  }
  return e as EspEngineChoice;
}

function bytes(v: unknown, name: string): Buffer {
  if (!(v instanceof Uint8Array)) throw new TypeError(`${name} must be a Buffer or Uint8Array`);
  return Buffer.from(v); // own copy: the caller may wipe or reuse theirs
}

export function resolveEspParams(p: EspSaParams): ResolvedEspParams {
  if (typeof p !== 'object' || p === null) throw new TypeError('ESP SA parameters must be an object');
  if (!isEspAlgorithm(p.algorithm)) throw new RangeError(`unknown ESP algorithm '${String(p.algorithm)}'`);
  const g = espGeometry(p.algorithm);
  const allowInsecure = p.allowInsecureForTests === true;
  if (g.insecure && !allowInsecure) {
    throw new RangeError(`${p.algorithm} has no confidentiality or no integrity: it needs allowInsecureForTests`);
  }
  if (p.direction !== 'outbound' && p.direction !== 'inbound') {
    throw new TypeError("direction must be 'outbound' or 'inbound'");
  }
  if (typeof p.spi !== 'number' || !Number.isInteger(p.spi) || p.spi < 0 || p.spi > 0xffffffff) {
    throw new RangeError('spi must be an integer in [0, 2^32-1]');
  }
  if (p.spi < 256 && !(allowInsecure && p.spi === 0)) {
    throw new RangeError('spi must be in [256, 2^32-1] (0..255 are reserved, RFC 4303 2.1)');
  }
  let encryptionKey: Buffer;
  let integrityKey: Buffer;
  let salt: Buffer;
  if (p.keymat !== undefined) {
    if (!(p.keymat instanceof Uint8Array)) throw new TypeError('keymat must be a Buffer or Uint8Array');
    ({ encryptionKey, integrityKey, salt } = splitEspKeymat(p.algorithm, p.keymat));
  } else {
    encryptionKey = g.encKeyLength === 0 && p.encryptionKey === undefined ? Buffer.alloc(0) : bytes(p.encryptionKey, 'encryptionKey');
    integrityKey = g.integKeyLength === 0 && p.integrityKey === undefined ? Buffer.alloc(0) : bytes(p.integrityKey, 'integrityKey');
    salt = g.saltLength === 0 && p.salt === undefined ? Buffer.alloc(0) : bytes(p.salt, 'salt');
  }
  if (encryptionKey.length !== g.encKeyLength) {
    throw new RangeError(`encryptionKey must be ${g.encKeyLength} octets for ${p.algorithm}`);
  }
  if (integrityKey.length !== g.integKeyLength) {
    throw new RangeError(`integrityKey must be ${g.integKeyLength} octets for ${p.algorithm}`);
  }
  if (salt.length !== g.saltLength) throw new RangeError(`salt must be ${g.saltLength} octets for ${p.algorithm}`);
  const replayWindow = p.replayWindow ?? 64;
  if (typeof replayWindow !== 'number' || !Number.isInteger(replayWindow) || replayWindow < 0 || replayWindow > MAX_REPLAY_WINDOW) {
    throw new RangeError(`replayWindow must be an integer in [0, ${MAX_REPLAY_WINDOW}]`);
  }
  const esn = p.esn ?? false;
  if (typeof esn !== 'boolean') throw new TypeError('esn must be a boolean');
  const mode = p.mode ?? 'tunnel';
  if (mode !== 'tunnel' && mode !== 'transport') throw new TypeError("mode must be 'tunnel' or 'transport'");
  let initialSequence: bigint | undefined;
  if (p.initialSequence !== undefined) {
    if (typeof p.initialSequence !== 'bigint') throw new TypeError('initialSequence must be a bigint');
    const max = esn ? 0xffffffffffffffffn : 0xffffffffn;
    if (p.initialSequence < 1n || p.initialSequence > max) {
      throw new RangeError('initialSequence must be in [1, 2^32-1] (2^64-1 with ESN)');
    }
    if (!allowInsecure) throw new RangeError('initialSequence is a test hook: it needs allowInsecureForTests');
    initialSequence = p.initialSequence;
  }
  return {
    spi: p.spi,
    algorithm: p.algorithm,
    geometry: g,
    outbound: p.direction === 'outbound',
    encryptionKey,
    integrityKey,
    salt,
    replayWindow,
    esn,
    mode,
    udpEncapsulation: p.udpEncapsulation === true,
    allowInsecure,
    initialSequence,
    engine: engineOf(p),
  };
}

export function checkNextHeader(nextHeader: unknown): number {
  if (typeof nextHeader !== 'number') throw new TypeError('nextHeader must be a number');
  if (!Number.isInteger(nextHeader) || nextHeader < 0 || nextHeader > 255) {
    throw new RangeError('nextHeader must be an integer in [0, 255]');
  }
  return nextHeader;
}
