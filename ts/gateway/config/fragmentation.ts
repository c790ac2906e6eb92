// `fragmentation` and `fragmentSize` of a connection: IKEv1 fragmentation (ts/ike/fragments.ts). "yes" (default)
// announces it and cuts our messages larger than fragmentSize once the peer has announced it too; "force" cuts
// them whatever the peer said (for peers that reassemble without announcing, and tests); "no" neither announces
// nor cuts. Fragments that arrive are reassembled in every case.
import { integer, oneOf, type Problems } from './check.js';

export interface FragmentationConfig {
  mode: 'yes' | 'no' | 'force';
  /** Largest IKE datagram we send (bytes, UDP payload); strongSwan's default is 1280. */
  size: number;
}

export function parseFragmentation(p: Problems, at: (key: string) => string, mode: unknown, size: unknown): FragmentationConfig {
  return { mode: oneOf(p, at('fragmentation'), mode, ['yes', 'no', 'force'] as const, 'yes'), size: integer(p, at('fragmentSize'), size, 576, 65000, 1280) };
}
