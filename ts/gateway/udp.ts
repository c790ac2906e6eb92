// A UDP socket for the IKE ports with batched system calls (native/udp.cc), in place of node:dgram where a
// gateway sets up many SAs: dgram makes one sendmsg per send and allocates 64 KiB per received datagram; this
// socket queues sends and writes them together with sendmmsg (see UdpSocket for when a queue leaves), and
// reads with recvmmsg into preallocated slots. Each datagram still reaches JavaScript in a call of its own, as with dgram, so that
// what its handling queues (ticks, microtasks) runs before the next one arrives.
//
// Linux only (sendmmsg / recvmmsg), and it needs the native addon.
import { getSystemErrorName } from 'node:util';
import type { Endpoint } from '../ike/index.js';
import { nativeAddon, nativeLoadError, type NativeAddon, type NativeUdpSocket, type UdpSocketStats } from '../native.js';

export type { UdpSocketStats } from '../native.js';

export type { Endpoint };

export interface UdpSocketOptions {
  /**
   * The local address: an IPv4 or IPv6 literal, whose family the socket takes ('0.0.0.0', '::', '127.0.0.1').
   * An IPv6 socket is dual stack (IPV6_V6ONLY off, as node:dgram's udp6): bound to '::' it also receives IPv4,
   * from IPv4-mapped addresses ('::ffff:192.0.2.1').
   */
  address: string;
  /** 0..65535; 0 lets the kernel pick a free port (see `port`). */
  port: number;
  /**
   * Each datagram, in the order received, in a call of its own as a dgram 'message' listener: its ticks and
   * microtasks run before the next datagram. An exception becomes the process's uncaught exception (with an
   * 'uncaughtException' handler, the next datagrams still come). `local`: the address the datagram was sent
   * to (IP_PKTINFO / IPV6_PKTINFO; what a socket bound to 0.0.0.0 or :: cannot know otherwise), undefined if
   * the kernel did not say.
   */
  onMessage: (message: Buffer, from: Endpoint, local: string | undefined) => void;
  /**
   * A queued datagram that could not be sent: the kernel refused it (`code` and `errno` as node's system
   * errors: ENETUNREACH, EINVAL, EMSGSIZE, EACCES...) or the send queue was full. Called asynchronously (on
   * process.nextTick), never from inside send(). Without it such datagrams are dropped silently (counted in
   * stats().sendErrors / queueFull); IKE retransmits.
   */
  onError?: (error: Error, to: Endpoint) => void;
  /** SO_RCVBUF in bytes (root may exceed net.core.rmem_max). Default: the kernel's. */
  recvBufferSize?: number;
  /** SO_SNDBUF in bytes (root may exceed net.core.wmem_max). Default: the kernel's. */
  sendBufferSize?: number;
  /**
   * How long a queued datagram may wait for others to share its sendmmsg while JavaScript keeps working, in
   * microseconds (default 100; 0 sends at once). Batching saves a few microseconds of system call per
   * datagram; holding a reply behind the handling of the next messages (a DH each, hundreds of microseconds)
   * would leave the peer idle. So the queue also leaves once its oldest datagram is this old, and right after
   * a received datagram whose handling took this long.
   */
  holdMicros?: number;
}


/** The addon's part (native/udp.cc). */
type UdpAddon = Pick<NativeAddon, 'UdpSocket'>;

function addon(): UdpAddon {
  const a = nativeAddon();
  if (!a || typeof a.UdpSocket !== 'function') {
    throw new Error(`UdpSocket needs the native addon (${nativeLoadError()?.message ?? 'UdpSocket missing'})`);
  }
  return a;
}

const endpointText = (address: string, port: number) => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);

function bufferSize(v: unknown, name: string): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number`);
  if (!Number.isInteger(v) || v < 1 || v > 0x7fffffff) throw new RangeError(`${name} must be an integer in [1, 2147483647]`);
  return v;
}

/**
 * A bound UDP socket. Sends are queued (copied) and leave in order with sendmmsg, at the latest in the next
 * event-loop turn (setImmediate), sooner when 64 are queued, when the oldest has waited `holdMicros`, or on
 * flush(). Received datagrams are read in batches and reach `onMessage` one call each, as from a dgram socket.
 *
 * Like a dgram socket, an open UdpSocket keeps the process alive (unless unref()ed) and stays open, receiving,
 * until close() even when no reference to it is left.
 */
export class UdpSocket {
  /** The bound port (the kernel's choice when opened with port 0). */
  readonly port: number;
  /** The local address it was opened with. */
  readonly address: string;
  readonly #native: NativeUdpSocket;
  readonly #onMessage: (message: Buffer, from: Endpoint, local: string | undefined) => void;
  readonly #onError: ((error: Error, to: Endpoint) => void) | undefined;
  #closed = false;
  #flushScheduled = false;
  readonly #autoFlush = () => {
    this.#flushScheduled = false;
    if (!this.#closed) this.#native.flush();
  };

  /**
   * Creates the socket and binds it, synchronously. Throws TypeError / RangeError for bad options and an
   * Error like node's system errors ("bind 127.0.0.1:500: Address already in use", with code, errno, syscall)
   * if the kernel refuses; nothing is left open then.
   */
  static open(opts: UdpSocketOptions): UdpSocket {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('options must be an object');
    if (typeof opts.address !== 'string') throw new TypeError('address must be a string');
    if (typeof opts.onMessage !== 'function') throw new TypeError('onMessage must be a function');
    if (opts.onError !== undefined && typeof opts.onError !== 'function') throw new TypeError('onError must be a function');
    const rcv = bufferSize(opts.recvBufferSize, 'recvBufferSize');
    const snd = bufferSize(opts.sendBufferSize, 'sendBufferSize');
    const hold = opts.holdMicros ?? 100;
    if (typeof hold !== 'number') throw new TypeError('holdMicros must be a number');
    if (!Number.isInteger(hold) || hold < 0 || hold > 60_000_000) throw new RangeError('holdMicros must be an integer in [0, 60000000]');
    return new UdpSocket(opts, rcv, snd, hold);
  }

  private constructor(opts: UdpSocketOptions, recvBufferSize: number, sendBufferSize: number, holdMicros: number) {
    this.#onMessage = opts.onMessage;
    this.#onError = opts.onError;
    // The callbacks must not hold the socket object strongly beyond close(): the native side drops them then.
    this.#native = new (addon().UdpSocket)(
      opts.address,
      opts.port,
      (datagram) => this.#deliver(datagram),
      (failures) => this.#failed(failures),
      recvBufferSize,
      sendBufferSize,
      holdMicros,
    );
    this.port = this.#native.port();
    this.address = opts.address;
  }

  /**
   * Queues `prefix` (if given, e.g. the non-ESP marker of RFC 3948) followed by `message` for `address`:`port`.
   * Never blocks and never throws for network conditions (those go to onError). Throws TypeError / RangeError
   * for bad arguments: a message or prefix that is not a Uint8Array, an address that is not an IP literal of
   * the socket's family (an IPv6 socket also takes IPv4 literals, sent as IPv4-mapped), a port outside
   * 1..65535, more than 65507 (IPv4) / 65527 (IPv6) bytes; Error('socket is closed') after close().
   * `source`: the local address to send from, for a socket bound to a wildcard (the address a peer wrote to,
   * so that the answer comes from it); RangeError if it is no address of the socket's family.
   */
  send(message: Uint8Array, address: string, port: number, prefix?: Uint8Array, source?: string): void {
    if (!this.#native.send(message, address, port, prefix, source)) {
      this.#report(new Error(`send to ${endpointText(address, port)} failed: send queue full`), address, port);
    }
    if (!this.#flushScheduled) {
      // The datagrams leave before the loop next waits in poll.
      this.#flushScheduled = true;
      setImmediate(this.#autoFlush);
    }
  }

  /** Writes the queued datagrams now (what does not fit in the socket buffer waits for it to drain). */
  flush(): void {
    this.#native.flush();
  }

  /** Sends what is queued (non-blocking: what does not fit in the socket buffer is dropped), then closes. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close();
  }

  /** The socket keeps the event loop (the process) alive again: the default. */
  ref(): this {
    this.#native.ref();
    return this;
  }

  /** The socket no longer keeps the event loop alive (it still receives while the loop runs for other reasons). */
  unref(): this {
    this.#native.unref();
    return this;
  }

  /** Counters since open (still readable after close). */
  stats(): UdpSocketStats {
    return this.#native.stats();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** One datagram: [message, address, port, local]. A throw goes up to the addon, which makes it uncaught. */
  #deliver(d: unknown[]): void {
    this.#onMessage(d[0] as Buffer, { address: d[1] as string, port: d[2] as number }, (d[3] as string) || undefined);
  }

  /** [errno, reason, address, port, ...] from the kernel's refusals. */
  #failed(failures: unknown[]): void {
    for (let i = 0; i < failures.length; i += 4) {
      const errno = failures[i] as number;
      const address = failures[i + 2] as string;
      const port = failures[i + 3] as number;
      const e = new Error(`send to ${endpointText(address, port)} failed: ${failures[i + 1] as string}`) as NodeJS.ErrnoException;
      e.errno = errno;
      e.code = getSystemErrorName(errno);
      e.syscall = 'sendmmsg';
      this.#report(e, address, port);
    }
  }

  #report(error: Error, address: string, port: number): void {
    const onError = this.#onError;
    if (onError) process.nextTick(onError, error, { address, port });
  }
}
