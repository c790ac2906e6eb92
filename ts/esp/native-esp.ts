// The ESP SA backed by the C++ addon (native/esp.cc). The batch calls go straight to C++; this class only adds
// the typed parameters, the single-packet helpers and the geometry functions.
import { espOpenedCapacity, espSealedLength, type EspKeyLengths } from './algorithms.js';
import { openSingle, sealSingle } from './node-esp.js';
import type { ResolvedEspParams } from './params.js';
import type { NativeAddon, NativeEspHandle } from '../native.js';
import type { EspAlgorithm, EspEngine, EspOpenResult, EspSa, EspSaStats } from './types.js';

/** The part of the addon (native/esp.cc) an ESP SA needs: its EspSa class. */
export type NativeEspAddon = Pick<NativeAddon, 'EspSa'>;

export class NativeEspSa implements EspSa {
  readonly implementation = 'native' as const;
  readonly spi: number;
  readonly algorithm: EspAlgorithm;
  readonly direction: 'outbound' | 'inbound';
  readonly esn: boolean;
  readonly replayWindow: number;
  readonly mode: 'tunnel' | 'transport';
  readonly udpEncapsulation: boolean;
  private readonly g: Readonly<EspKeyLengths>;
  private readonly h: NativeEspHandle;

  constructor(addon: NativeEspAddon, p: ResolvedEspParams) {
    this.spi = p.spi;
    this.algorithm = p.algorithm;
    this.direction = p.outbound ? 'outbound' : 'inbound';
    this.esn = p.esn;
    this.replayWindow = p.replayWindow;
    this.mode = p.mode;
    this.udpEncapsulation = p.udpEncapsulation;
    this.g = p.geometry;
    this.h = new addon.EspSa(
      p.algorithm,
      p.outbound,
      p.spi,
      p.encryptionKey,
      p.integrityKey,
      p.salt,
      p.replayWindow,
      p.esn,
      p.allowInsecure,
      p.initialSequence,
      p.engine,
    );
    // The C++ object holds its own copies (it builds its cipher context and HMAC states from them on the first
    // packet); ours are no longer needed.
    p.encryptionKey.fill(0);
    p.integrityKey.fill(0);
    p.salt.fill(0);
  }

  /**
   * 'ipsec-mb' or 'evp', chosen by the addon at install (native/esp.cc ChooseEngine); an AES-CBC SA attached to
   * the one-packet-at-a-time data plane moves to EVP (AttachSa), hence read each time.
   */
  get engine(): EspEngine {
    return this.h.engine();
  }

  sealedLength(payloadLength: number): number {
    return espSealedLength(this.g, payloadLength);
  }
  overhead(payloadLength: number): number {
    return this.sealedLength(payloadLength) - payloadLength;
  }
  openedCapacity(packetLength: number): number {
    return espOpenedCapacity(this.g, packetLength);
  }

  sealBatch(
    input: Uint8Array,
    offsets: Uint32Array,
    lengths: Uint32Array,
    nextHeaders: Uint8Array,
    output: Uint8Array,
    outOffsets: Uint32Array,
    outLengths: Uint32Array,
    status: Uint8Array,
    count?: number,
  ): number {
    return this.h.sealBatch(input, offsets, lengths, nextHeaders, output, outOffsets, outLengths, status, count);
  }

  openBatch(
    input: Uint8Array,
    offsets: Uint32Array,
    lengths: Uint32Array,
    output: Uint8Array,
    outOffsets: Uint32Array,
    outLengths: Uint32Array,
    nextHeaders: Uint8Array,
    status: Uint8Array,
    count?: number,
  ): number {
    return this.h.openBatch(input, offsets, lengths, output, outOffsets, outLengths, nextHeaders, status, count);
  }

  seal(payload: Uint8Array, nextHeader: number): Buffer {
    return sealSingle(this, payload, nextHeader);
  }
  open(packet: Uint8Array): EspOpenResult {
    return openSingle(this, packet);
  }
  sealWithIv(payload: Uint8Array, nextHeader: number, seq: bigint, iv: Uint8Array): Buffer {
    return this.h.sealWithIv(payload, nextHeader, seq, iv);
  }
  stats(): EspSaStats {
    return this.h.stats();
  }
  sequence(): bigint {
    return this.h.sequence();
  }
  destroy(): void {
    this.h.destroy();
  }
}
