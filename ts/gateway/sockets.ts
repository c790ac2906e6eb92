// The gateway's two UDP sockets (the IKE port, and the NAT-T port when no TUN data plane owns it), in one
// shape over two implementations: the addon's UdpSocket (udp.ts: sends queued and written with sendmmsg,
// reads with recvmmsg, each datagram still handed to JavaScript in a call of its own), and node:dgram where
// the addon is not loaded (IKE_NO_NATIVE=1, a platform without it) or the caller asks for it.
import dgram from 'node:dgram';
import type { Endpoint } from '../ike/index.js';
import { nativeAddon } from '../native.js';
import { UdpSocket } from './udp.js';

export interface GatewaySocket {
  /** The bound port. */
  readonly port: number;
  /**
   * Queues `prefix` (if any) then `message` for `to`, from the local address `source` if given (the addon's
   * socket only; node:dgram leaves the choice to the kernel); a failure comes back through onError, later.
   */
  send(message: Uint8Array, to: Endpoint, prefix?: Uint8Array, source?: string): void;
  /** Lets what is queued leave (briefly: a send that never completes cannot hold it), then closes. */
  close(): Promise<void>;
}

export interface SocketHandlers {
  /** `local`: the address the datagram came to (the addon's socket; undefined from node:dgram). */
  onMessage(message: Buffer, from: Endpoint, local?: string): void;
  /** `message` says which datagram and why: "send to 192.0.2.1:500 failed: ...". */
  onError(message: string, to: Endpoint): void;
}

/**
 * The address the kernel would send from to `to` (its route's source): a UDP socket connected, and closed
 * again; nothing is sent. What a gateway listening on 0.0.0.0 / :: puts in its NAT-D hashes when it
 * initiates. Undefined when there is no route.
 */
export async function routeSource(to: Endpoint): Promise<string | undefined> {
  const s = dgram.createSocket(to.address.includes(':') ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.connect(to.port, to.address, () => resolve());
    });
    return s.address().address;
  } catch {
    return undefined;
  } finally {
    s.close();
  }
}

/** Binds a socket on address:port (0: any free port); the addon's when `native` (default: when it is loaded). */
export function openSocket(address: string, port: number, h: SocketHandlers, native = nativeAddon() !== null): Promise<GatewaySocket> {
  return native ? Promise.resolve(openNative(address, port, h)) : openDgram(address, port, h);
}

function openNative(address: string, port: number, h: SocketHandlers): GatewaySocket {
  // 4 MiB of receive queue: a flood of message 1s and a process that waits for a CPU (a busy host) would
  // otherwise overflow the kernel's default ~200 KiB in tens of milliseconds, genuine peers' messages with it
  const s = UdpSocket.open({ address, port, recvBufferSize: 4 << 20, onMessage: h.onMessage, onError: (e, to) => h.onError(e.message, to) });
  return {
    port: s.port,
    send(message, to, prefix, source) {
      try {
        s.send(message, to.address, to.port, prefix, source);
      } catch (e) {
        // What UdpSocket refuses synchronously (an address of the other family, an oversized datagram) is a
        // failed send like any other for the gateway, as node:dgram reports it: never an exception in the
        // middle of an exchange or a timer.
        h.onError(`send to ${to.address}:${to.port} failed: ${(e as Error).message}`, to);
      }
    },
    close: async () => s.close(),
  };
}

async function openDgram(address: string, port: number, h: SocketHandlers): Promise<GatewaySocket> {
  const s = await new Promise<dgram.Socket>((resolve, reject) => {
    const sock = dgram.createSocket({ type: address.includes(':') ? 'udp6' : 'udp4', reuseAddr: false });
    sock.once('error', reject);
    sock.bind(port, address, () => {
      sock.off('error', reject);
      sock.on('error', () => undefined);
      resolve(sock);
    });
  });
  s.on('message', (msg, rinfo) => h.onMessage(msg, { address: rinfo.address, port: rinfo.port }));
  // Datagrams handed to the socket and not yet sent: close() waits for them (the Deletes stop() just queued).
  const sending = new Set<Promise<void>>();
  return {
    port: s.address().port,
    send(message, to, prefix) {
      const data = prefix ? Buffer.concat([prefix, message]) : message;
      const sent = new Promise<void>((resolve) =>
        s.send(data, to.port, to.address, (err) => {
          sending.delete(sent);
          if (err) h.onError(`send to ${to.address}:${to.port} failed: ${err.message}`, to);
          resolve();
        }),
      );
      sending.add(sent);
    },
    async close() {
      await Promise.race([Promise.all(sending), new Promise((r) => setTimeout(r, 1000).unref())]);
      await new Promise<void>((r) => s.close(() => r()));
    },
  };
}
