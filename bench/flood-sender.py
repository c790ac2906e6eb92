#!/usr/bin/env python3
# Sends IKEv1 message 1s at a steady rate, each from a random source address of a prefix and with a random
# initiator cookie: the spoofed flood of issue 20 (bench/flood.ts, test/stress/flood-spoofed.test.ts).
# Runs inside a test namespace where the prefix is routed locally (`ip route add local PREFIX dev lo`, Linux
# AnyIP): IP_PKTINFO then sets any address of it as the source of a datagram, with no socket per address.
# Node's dgram cannot set a source per datagram, hence this small script (Python 3 of Debian).
#   flood-sender.py DEST_IP DEST_PORT RATE SECONDS PREFIX/LEN MESSAGE_HEX
# Prints one JSON line at the end: {"sent": N, "seconds": S, "rate": N/S}.
import ipaddress
import json
import os
import random
import socket
import struct
import sys
import time

IP_PKTINFO = 8  # linux/in.h (the socket module does not export it)


def main() -> None:
    dest, port, rate, seconds, prefix, message_hex = sys.argv[1:7]
    dest_addr = (dest, int(port))
    rate = float(rate)
    seconds = float(seconds)
    net = ipaddress.ip_network(prefix)
    base = int(net.network_address)
    span = net.num_addresses - 2  # not the network nor the broadcast address
    message = bytearray(bytes.fromhex(message_hex))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    rnd = random.Random(os.getpid())
    start = time.monotonic()
    sent = 0
    # bursts every millisecond: the rate holds without a sleep per datagram
    while True:
        now = time.monotonic() - start
        if now >= seconds:
            break
        due = int(now * rate) + 1
        while sent < due:
            message[0:8] = rnd.getrandbits(64).to_bytes(8, 'big')
            src = struct.pack('!I', base + 1 + rnd.randrange(span))
            cmsg = [(socket.SOL_IP, IP_PKTINFO, struct.pack('=I4s4s', 0, src, b'\0\0\0\0'))]
            try:
                sock.sendmsg([message], cmsg, 0, dest_addr)
            except (BlockingIOError, OSError):
                pass  # a full queue drops, as a network would
            sent += 1
        time.sleep(0.001)
    elapsed = time.monotonic() - start
    print(json.dumps({'sent': sent, 'seconds': round(elapsed, 3), 'rate': round(sent / elapsed)}), flush=True)


if __name__ == '__main__':
    main()
