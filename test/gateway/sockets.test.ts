// The gateway's two socket implementations behind one shape (ts/gateway/sockets.ts): the addon's batched
// UdpSocket and node:dgram deliver alike, and report a datagram they cannot send through onError, never by
// throwing into the exchange or timer that sent it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSocket } from '../../ts/gateway/sockets.js';
import type { Endpoint } from '../../ts/ike/index.js';
import { nativeAddon } from '../../ts/native.js';

const kinds = [
  { name: 'node:dgram', native: false, skip: false as const },
  { name: 'batched UdpSocket', native: true, skip: nativeAddon() !== null && process.platform === 'linux' ? (false as const) : 'native addon not built (or not Linux)' },
];

for (const k of kinds) {
  test(`gateway sockets (${k.name}): datagrams with a prefix arrive in order; refused sends go to onError, none throws`, { skip: k.skip, timeout: 10_000 }, async () => {
    const got: { text: string; from: Endpoint }[] = [];
    const errors: string[] = [];
    const rx = await openSocket('127.0.0.1', 0, { onMessage: (m, from) => got.push({ text: m.toString(), from }), onError: (m) => errors.push(m) }, k.native);
    const tx = await openSocket('127.0.0.1', 0, { onMessage() {}, onError: (m) => errors.push(m) }, k.native);
    try {
      const to = { address: '127.0.0.1', port: rx.port };
      tx.send(Buffer.from('one'), to);
      tx.send(Buffer.from('two'), to, Buffer.from('>>'));
      tx.send(Buffer.from('x'), { address: '::1', port: rx.port }); // the other family
      tx.send(Buffer.from('x'), { address: '0.0.0.1', port: 500 }); // refused by the kernel (EINVAL)
      tx.send(Buffer.from('three'), to);
      for (let i = 0; i < 500 && (got.length < 3 || errors.length < 2); i++) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(got.map((g) => g.text), ['one', '>>two', 'three']);
      assert.deepEqual(got[0]!.from, { address: '127.0.0.1', port: tx.port });
      assert.equal(errors.length, 2, errors.join('\n'));
      assert.ok(errors.some((e) => e.startsWith('send to ::1:')), errors.join('\n'));
      assert.ok(errors.some((e) => e.startsWith('send to 0.0.0.1:500 failed')), errors.join('\n'));
    } finally {
      await tx.close();
      await rx.close();
    }
  });
}
