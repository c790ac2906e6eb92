// UDP encapsulation of ESP (RFC 3948). The SA never sees a UDP header: a sender hands the sealed packet to a
// UDP socket (port 4500), which adds the header; a receiver's socket strips it and passes the rest here.
// What is left for this layer is telling the three kinds of datagram on port 4500 apart.

/**
 * Kind of a datagram received on the NAT-T port (the bytes after the UDP header):
 * - 'keepalive': one octet 0xFF (RFC 3948 2.3), to be dropped;
 * - 'ike': starts with the 4-octet non-ESP marker (zero), the IKE message follows it (RFC 3948 2.2);
 * - 'esp': anything else of at least 8 octets starts with a non-zero SPI: hand it to the SA as it is;
 * - 'invalid': too short to be either.
 */
export function classifyNatTDatagram(d: Uint8Array): 'esp' | 'ike' | 'keepalive' | 'invalid' {
  if (d.length === 1 && d[0] === 0xff) return 'keepalive';
  if (d.length >= 4 && d[0] === 0 && d[1] === 0 && d[2] === 0 && d[3] === 0) return 'ike';
  if (d.length >= 8) return 'esp';
  return 'invalid';
}

/** The 4 zero octets a sender puts before an IKE message on port 4500. */
export const NON_ESP_MARKER = Buffer.alloc(4);

/** Reads the SPI of an ESP datagram (to find its SA), or undefined when it is not ESP. */
export function espSpiOf(d: Uint8Array): number | undefined {
  if (classifyNatTDatagram(d) !== 'esp') return undefined;
  return ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) >>> 0;
}
