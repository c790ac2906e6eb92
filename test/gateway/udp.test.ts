// The batched UDP socket (ts/gateway/udp.ts, native/udp.cc) with real sockets on 127.0.0.1 and ::1: datagrams
// intact and in order, batching, interop with node:dgram, the send queue's flush points, argument errors,
// kernel refusals through onError, a throwing onMessage, ref/unref and teardown in child processes, a fuzz.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UdpSocket, type Endpoint } from '../../ts/gateway/udp.js';
import { nativeAddon } from '../../ts/native.js';
import { until } from './peers.js';

const haveNative = nativeAddon() !== null && process.platform === 'linux';
const UDP_URL = pathToFileURL(fileURLToPath(new URL('../../ts/gateway/udp.js', import.meta.url))).href;

function ipv6Skip(): string | false {
  if (!haveNative) return 'native addon not built (or not Linux)';
  try {
    UdpSocket.open({ address: '::1', port: 0, onMessage() {} }).close();
    return false;
  } catch (e) {
    return `IPv6 loopback unavailable: ${(e as Error).message}`;
  }
}
const skip4 = haveNative ? false : 'native addon not built (or not Linux)';
const skip6 = ipv6Skip();
const families = [
  { name: 'IPv4', loopback: '127.0.0.1', type: 'udp4' as const, skip: skip4 },
  { name: 'IPv6', loopback: '::1', type: 'udp6' as const, skip: skip6 },
];

const fds = () => readdirSync('/proc/self/fd').length;

/** Runs an ES module as a child process: exit code, signal, stdout, stderr. */
function child(code: string, args: string[] = [], timeout = 10_000, env: Record<string, string> = {}): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...args, '--input-type=module', '-e', code], { encoding: 'utf8', timeout, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

for (const f of families) {
  test(`udp ${f.name}: 1,000 datagrams of 1..9000 random bytes arrive intact and in order, in batches`, { skip: f.skip, timeout: 30_000 }, async () => {
    const got: Buffer[] = [];
    const from: Endpoint[] = [];
    const rx = UdpSocket.open({ address: f.loopback, port: 0, recvBufferSize: 4 << 20, onMessage: (m, e) => (got.push(m), from.push(e)) });
    const tx = UdpSocket.open({ address: f.loopback, port: 0, onMessage() {} });
    try {
      const sizes = Array.from({ length: 1000 }, (_, i) => (i === 0 ? 1 : i === 1 ? 9000 : 1 + Math.floor(Math.random() * 9000)));
      const sent = sizes.map((n) => randomBytes(n));
      // Rounds of 100 (all queued in one turn, so ~0.5 MB in flight at most): no drops at the receive buffer.
      for (let r = 0; r < 1000; r += 100) {
        for (let i = r; i < r + 100; i++) tx.send(sent[i], f.loopback, rx.port);
        await until(() => got.length >= r + 100, 5000, `datagrams ${r}..${r + 99} (got ${got.length})`);
      }
      assert.equal(got.length, 1000);
      for (let i = 0; i < 1000; i++) assert.ok(got[i].equals(sent[i]), `datagram ${i} (${sizes[i]} bytes) differs or is out of order`);
      assert.ok(from.every((e) => e.address === f.loopback && e.port === tx.port), 'source endpoint');
      // Each message is its own Buffer, not a view into a shared batch buffer.
      assert.ok(got.every((m) => m.byteOffset === 0 && m.buffer.byteLength === m.length), 'a message is a view into a larger buffer');
      assert.equal(new Set(got.map((m) => m.buffer)).size, got.length, 'messages share an ArrayBuffer');
      const rs = rx.stats();
      const ts = tx.stats();
      assert.equal(rs.received, 1000);
      assert.ok(rs.batches < rs.received, `batches ${rs.batches} < received ${rs.received}`);
      assert.ok(rs.batches >= 10, 'one batch per round at least');
      assert.equal(ts.sent, 1000);
      assert.equal(ts.sendErrors, 0);
      assert.equal(ts.queued, 0);
    } finally {
      rx.close();
      tx.close();
    }
  });

  test(`udp ${f.name}: interop with node:dgram both ways; the prefix goes in front`, { skip: f.skip, timeout: 10_000 }, async () => {
    const marker = Buffer.from([0, 0, 0, 0]);
    const atUdp: { m: string; e: Endpoint }[] = [];
    const sock = UdpSocket.open({
      address: f.loopback,
      port: 0,
      onMessage: (m, e) => {
        atUdp.push({ m: m.toString(), e });
        if (m.toString() === 'ping from dgram') sock.send(Buffer.from('pong'), e.address, e.port, marker);
      },
    });
    const d = dgram.createSocket(f.type);
    const atDgram: Buffer[] = [];
    d.on('message', (m, rinfo) => {
      atDgram.push(m);
      if (m.toString() === 'ping from UdpSocket') d.send(Buffer.from('pong from dgram'), rinfo.port, rinfo.address);
    });
    try {
      await new Promise<void>((r) => d.bind(0, f.loopback, r));
      d.send(Buffer.from('ping from dgram'), sock.port, f.loopback);
      await until(() => atDgram.length === 1, 5000, 'the answer at dgram');
      assert.deepEqual(atDgram[0], Buffer.concat([marker, Buffer.from('pong')]));
      assert.deepEqual(atUdp[0], { m: 'ping from dgram', e: { address: f.loopback, port: d.address().port } });

      sock.send(Buffer.from('ping from UdpSocket'), f.loopback, d.address().port);
      await until(() => atUdp.length === 2, 5000, 'the answer at UdpSocket');
      assert.equal(atDgram[1].toString(), 'ping from UdpSocket');
      assert.deepEqual(atUdp[1], { m: 'pong from dgram', e: { address: f.loopback, port: d.address().port } });
      // an empty message with a prefix is the prefix alone; an empty datagram is a datagram
      sock.send(new Uint8Array(0), f.loopback, d.address().port, Uint8Array.of(0xff));
      sock.send(new Uint8Array(0), f.loopback, d.address().port);
      await until(() => atDgram.length === 4, 5000, 'the prefix-only and empty datagrams');
      assert.deepEqual(atDgram[2], Buffer.from([0xff]));
      assert.equal(atDgram[3].length, 0);
    } finally {
      sock.close();
      d.close();
    }
  });

  test(`udp ${f.name}: the queue leaves at 64, on flush(), in the next turn and on close(); use after close throws`, { skip: f.skip, timeout: 10_000 }, async () => {
    const got: number[] = [];
    const d = dgram.createSocket(f.type);
    d.on('message', (m) => got.push(m.readUInt16BE(0)));
    await new Promise<void>((r) => d.bind(0, f.loopback, r));
    const to = d.address().port;
    const u16 = (i: number) => Uint8Array.of(i >> 8, i & 0xff);
    // a hold no run reaches: the flush points below are then the count, the turn, flush() and close()
    const s = UdpSocket.open({ address: f.loopback, port: 0, onMessage() {}, holdMicros: 60_000_000 });
    try {
      s.send(u16(0), f.loopback, to);
      assert.deepEqual([s.stats().sent, s.stats().queued], [0, 1], 'queued, not sent yet');
      s.flush();
      assert.deepEqual([s.stats().sent, s.stats().queued], [1, 0], 'flush() sends');
      for (let i = 1; i <= 63; i++) s.send(u16(i), f.loopback, to);
      assert.equal(s.stats().sent, 1);
      s.send(u16(64), f.loopback, to);
      assert.equal(s.stats().sent, 65, 'the 64th queued datagram sends the batch');
      s.send(u16(65), f.loopback, to);
      assert.equal(s.stats().sent, 65);
      await new Promise((r) => setImmediate(r));
      assert.equal(s.stats().sent, 66, 'sent in the next turn without flush()');
      for (let i = 66; i < 76; i++) s.send(u16(i), f.loopback, to);
      s.close();
      s.close(); // idempotent
      await until(() => got.length === 76, 5000, `all 76 datagrams (got ${got.length})`);
      assert.deepEqual(got, Array.from({ length: 76 }, (_, i) => i), 'in the order sent');
      assert.equal(s.stats().sent, 76, 'close() flushed; stats() still answers');
      assert.throws(() => s.send(u16(0), f.loopback, to), { name: 'Error', message: 'socket is closed' });
      assert.throws(() => s.flush(), { message: 'socket is closed' });
      assert.throws(() => s.ref(), { message: 'socket is closed' });
      assert.throws(() => s.unref(), { message: 'socket is closed' });
    } finally {
      s.close();
      d.close();
    }
  });

  test(`udp ${f.name}: argument errors are TypeError / RangeError, synchronously`, { skip: f.skip }, () => {
    const other = f.name === 'IPv4' ? '::1' : 'not-an-address';
    const max = f.name === 'IPv4' ? 65507 : 65527;
    const s = UdpSocket.open({ address: f.loopback, port: 0, onMessage() {}, holdMicros: 60_000_000 });
    const sink = UdpSocket.open({ address: f.loopback, port: 0, onMessage() {} });
    try {
      const ok = Buffer.from('x');
      const send = (...a: unknown[]) => (s.send as (...x: unknown[]) => void)(...a);
      for (const m of ['text', 7, null, undefined, {}, new ArrayBuffer(4), new Uint16Array(2), new DataView(new ArrayBuffer(2))]) {
        assert.throws(() => send(m, f.loopback, sink.port), TypeError, `message ${String(m)}`);
      }
      assert.throws(() => send(ok, 7, sink.port), TypeError);
      assert.throws(() => send(ok, undefined, sink.port), TypeError);
      assert.throws(() => send(ok, f.loopback, '500'), TypeError);
      assert.throws(() => send(ok, f.loopback), TypeError);
      assert.throws(() => send(ok, f.loopback, sink.port, 'prefix'), TypeError);
      assert.throws(() => send(ok, f.loopback, sink.port, [0, 0, 0, 0]), TypeError);
      for (const a of [other, 'localhost', '', '1.2.3', '127.0.0.1 ', '::1%', '::1%no-such-interface0']) {
        assert.throws(() => send(ok, a, sink.port), RangeError, `address '${a}'`);
      }
      for (const p of [0, -1, 65536, 1.5, NaN, Infinity]) assert.throws(() => send(ok, f.loopback, p), RangeError, `port ${p}`);
      assert.throws(() => send(Buffer.alloc(max + 1), f.loopback, sink.port), RangeError);
      assert.throws(() => send(Buffer.alloc(max - 3), f.loopback, sink.port, Buffer.alloc(4)), RangeError, 'prefix counts');
      send(Buffer.alloc(max), f.loopback, sink.port); // the largest datagram is fine
      send(Buffer.alloc(max - 4), f.loopback, sink.port, Buffer.alloc(4));
      if (f.name === 'IPv6') send(ok, '127.0.0.1', sink.port); // IPv4 on an IPv6 socket: sent IPv4-mapped
      assert.equal(s.stats().queued, f.name === 'IPv6' ? 3 : 2, 'refused datagrams were not queued');

      const open = (o: unknown) => UdpSocket.open(o as never);
      assert.throws(() => open(undefined), TypeError);
      assert.throws(() => open({ address: f.loopback, port: 0 }), TypeError, 'onMessage missing');
      assert.throws(() => open({ address: f.loopback, port: 0, onMessage() {}, onError: 1 }), TypeError);
      assert.throws(() => open({ address: f.loopback, port: 0, onMessage() {}, holdMicros: '1' }), TypeError);
      for (const h of [-1, 1.5, 60_000_001]) assert.throws(() => open({ address: f.loopback, port: 0, onMessage() {}, holdMicros: h }), RangeError, `holdMicros ${h}`);
      assert.throws(() => open({ address: 1, port: 0, onMessage() {} }), TypeError);
      assert.throws(() => open({ address: f.loopback, port: '0', onMessage() {} }), TypeError);
      assert.throws(() => open({ address: f.loopback, port: 65536, onMessage() {} }), RangeError);
      assert.throws(() => open({ address: f.loopback, port: -1, onMessage() {} }), RangeError);
      assert.throws(() => open({ address: 'localhost', port: 0, onMessage() {} }), RangeError);
      assert.throws(() => open({ address: f.loopback, port: 0, onMessage() {}, recvBufferSize: 0 }), RangeError);
      assert.throws(() => open({ address: f.loopback, port: 0, onMessage() {}, sendBufferSize: '1' }), TypeError);
    } finally {
      s.close();
      sink.close();
    }
  });

  test(`udp ${f.name}: open() on a port in use throws a clear Error and leaves no fd open`, { skip: f.skip }, () => {
    const a = UdpSocket.open({ address: f.loopback, port: 0, onMessage() {} });
    try {
      const before = fds();
      const where = f.name === 'IPv4' ? `${f.loopback}:${a.port}` : `[${f.loopback}]:${a.port}`;
      for (let i = 0; i < 20; i++) {
        assert.throws(() => UdpSocket.open({ address: f.loopback, port: a.port, onMessage() {} }), {
          name: 'Error',
          message: `bind ${where}: Address already in use`,
          code: 'EADDRINUSE',
          syscall: 'bind',
        });
      }
      // an address this machine does not have (TEST-NET)
      const foreign = f.name === 'IPv4' ? '192.0.2.1' : '2001:db8::1';
      assert.throws(() => UdpSocket.open({ address: foreign, port: 0, onMessage() {} }), { code: 'EADDRNOTAVAIL' });
      assert.equal(fds(), before, 'file descriptors before and after');
    } finally {
      a.close();
    }
  });
}

test('udp: an onMessage that throws is an uncaught exception, as from a dgram listener; with a handler the next datagrams still come', { skip: skip4, timeout: 20_000 }, async () => {
  const code = `
    import { UdpSocket } from ${JSON.stringify(UDP_URL)};
    import { writeSync } from 'node:fs';
    const log = (s) => writeSync(1, s + '\\n');
    let n = 0;
    const rx = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage: (m) => {
      log('message ' + m.toString());
      if (++n === 6) rx.close();
      if (m.toString() === '2') throw new Error('boom at 2');
      if (m.toString() === '4') throw new Error('second throw at 4');
    } });
    if (process.env.HANDLED === '1') process.on('uncaughtException', (e) => log('uncaught ' + e.message));
    const tx = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage() {} });
    for (let i = 1; i <= 6; i++) tx.send(Buffer.from(String(i)), '127.0.0.1', rx.port);
    tx.close();
  `;
  // The sixth message closes the socket, so that the process can end.
  const handled = await child(code, [], 10_000, { HANDLED: '1' });
  assert.equal(handled.code, 0, handled.stderr);
  assert.deepEqual(handled.stdout.trim().split('\n'), ['message 1', 'message 2', 'uncaught boom at 2', 'message 3', 'message 4', 'uncaught second throw at 4', 'message 5', 'message 6']);

  const unhandled = await child(code);
  assert.equal(unhandled.code, 1, 'an uncaught exception ends the process');
  assert.match(unhandled.stderr, /Error: boom at 2/);
  assert.deepEqual(unhandled.stdout.trim().split('\n'), ['message 1', 'message 2']);
});

test('udp: onMessage runs like a dgram listener: the ticks and microtasks of one datagram run before the next datagram, immediates after', { skip: skip4, timeout: 10_000 }, async () => {
  // The gateway depends on it: an exchange still awaiting inside one message must not see the next mid-step.
  for (const kind of ['dgram', 'UdpSocket'] as const) {
    const order: string[] = [];
    const onMessage = (m: Buffer) => {
      order.push(`message ${m}`);
      if (String(m) === '1') {
        queueMicrotask(() => order.push('microtask'));
        process.nextTick(() => order.push('tick'));
        setImmediate(() => order.push('immediate'));
      }
    };
    let port: number;
    let close: () => void;
    if (kind === 'dgram') {
      const d = dgram.createSocket('udp4');
      d.on('message', onMessage);
      await new Promise<void>((r) => d.bind(0, '127.0.0.1', r));
      port = d.address().port;
      close = () => d.close();
    } else {
      const u = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage });
      port = u.port;
      close = () => u.close();
    }
    const tx = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage() {} });
    try {
      tx.send(Buffer.from('1'), '127.0.0.1', port);
      tx.send(Buffer.from('2'), '127.0.0.1', port);
      tx.flush();
      await until(() => order.length === 5, 5000, 'the datagrams and their callbacks');
      assert.deepEqual(order, ['message 1', 'tick', 'microtask', 'message 2', 'immediate'], kind);
    } finally {
      close();
      tx.close();
    }
  }
});

test('udp: holdMicros: a datagram waits at most that long for company, and replies leave right after a long handling', { skip: skip4, timeout: 10_000 }, async () => {
  const sink = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage() {} });
  const now0 = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage() {}, holdMicros: 0 });
  try {
    now0.send(Buffer.from('a'), '127.0.0.1', sink.port);
    now0.send(Buffer.from('b'), '127.0.0.1', sink.port);
    assert.equal(now0.stats().sent, 2, 'holdMicros 0: each datagram leaves at once');
    // Two datagrams read in one wake-up; the first one's handling replies. Whether the reply has left when the
    // second datagram is handled depends on how long the first handling took against the hold.
    for (const [busyMs, holdMicros, leftEarly] of [[0, 60_000_000, false], [5, 1000, true]] as const) {
      const sentAtSecond: number[] = [];
      const rx: UdpSocket = UdpSocket.open({
        address: '127.0.0.1',
        port: 0,
        holdMicros,
        onMessage: (m) => {
          if (String(m) === '1') {
            rx.send(Buffer.from('reply'), '127.0.0.1', sink.port);
            const end = performance.now() + busyMs;
            while (performance.now() < end); // the handling of a heavy message (a DH)
          } else sentAtSecond.push(rx.stats().sent);
        },
      });
      const tx = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage() {} });
      tx.send(Buffer.from('1'), '127.0.0.1', rx.port);
      tx.send(Buffer.from('2'), '127.0.0.1', rx.port);
      tx.flush();
      await until(() => sentAtSecond.length === 1, 5000, 'the second datagram');
      assert.deepEqual(sentAtSecond, [leftEarly ? 1 : 0], `busy ${busyMs} ms, hold ${holdMicros} us`);
      tx.close();
      rx.close();
    }
  } finally {
    sink.close();
    now0.close();
  }
});

test('udp: a datagram the kernel refuses goes to onError (asynchronously, with the address); the others still leave', { skip: skip4, timeout: 10_000 }, async () => {
  const got: string[] = [];
  const errors: { e: NodeJS.ErrnoException; to: Endpoint }[] = [];
  const rx = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage: (m) => got.push(m.toString()) });
  let inSend = false;
  const tx = UdpSocket.open({
    address: '127.0.0.1',
    port: 0,
    onMessage() {},
    onError: (e, to) => {
      assert.ok(!inSend, 'onError called from inside send()/flush()');
      errors.push({ e: e as NodeJS.ErrnoException, to });
    },
  });
  try {
    // From a socket bound to 127.0.0.1 the kernel refuses any non-loopback destination at once (EINVAL):
    // nothing leaves the machine. 255.255.255.255 without SO_BROADCAST: EACCES.
    inSend = true;
    tx.send(Buffer.from('a'), '127.0.0.1', rx.port);
    tx.send(Buffer.from('refused'), '0.0.0.1', 500);
    tx.send(Buffer.from('b'), '127.0.0.1', rx.port);
    tx.send(Buffer.from('broadcast'), '255.255.255.255', 500);
    tx.send(Buffer.from('c'), '127.0.0.1', rx.port);
    tx.flush();
    inSend = false;
    assert.equal(errors.length, 0, 'not synchronous');
    await until(() => errors.length === 2 && got.length === 3, 5000, 'two errors and three datagrams');
    assert.deepEqual(got, ['a', 'b', 'c']);
    assert.equal(errors[0].e.message, 'send to 0.0.0.1:500 failed: Invalid argument');
    assert.equal(errors[0].e.code, 'EINVAL');
    assert.deepEqual(errors[0].to, { address: '0.0.0.1', port: 500 });
    assert.equal(errors[1].e.message, 'send to 255.255.255.255:500 failed: Permission denied');
    assert.equal(errors[1].e.code, 'EACCES');
    assert.deepEqual({ ...tx.stats(), queued: 0 }, { received: 0, sent: 3, sendErrors: 2, truncated: 0, queueFull: 0, batches: 0, queued: 0 });
    // later sends still work, and the auto flush reports the same way
    tx.send(Buffer.from('d'), '127.0.0.1', rx.port);
    tx.send(Buffer.from('refused again'), '0.0.0.1', 4500);
    await until(() => errors.length === 3 && got.length === 4, 5000, 'the later send and error');
    assert.equal(errors[2].e.message, 'send to 0.0.0.1:4500 failed: Invalid argument');
  } finally {
    rx.close();
    tx.close();
  }
});

/** Root in a private network namespace with tc: a rate-limited qdisc on lo makes the send buffer fill up. */
function shapedLoSkip(): string | false {
  if (skip4) return skip4;
  if (process.getuid?.() !== 0) return 'needs root (a network namespace with a tbf qdisc on lo)';
  const r = spawnSync('unshare', ['-n', 'tc', 'qdisc', 'show', 'dev', 'lo'], { encoding: 'utf8', timeout: 5000 });
  return r.status === 0 ? false : `unshare -n / tc not usable: ${(r.error?.message ?? r.stderr).trim()}`;
}

test('udp: a full send buffer (EAGAIN) keeps datagrams queued until the socket is writable; beyond the bound, "send queue full"', { skip: shapedLoSkip(), timeout: 30_000 }, async () => {
  // Datagrams held by the qdisc stay charged to the sender's socket buffer (4 KiB here): sendmmsg soon says EAGAIN.
  const code = `
    import { execFileSync } from 'node:child_process';
    import { UdpSocket } from ${JSON.stringify(UDP_URL)};
    execFileSync('ip', ['link', 'set', 'lo', 'up']);
    execFileSync('tc', ['qdisc', 'add', 'dev', 'lo', 'root', 'tbf', 'rate', '20mbit', 'burst', '1600', 'limit', '100000000']);
    const until = async (done) => { for (const t = Date.now(); !done() && Date.now() - t < 8000; ) await new Promise((r) => setTimeout(r, 5)); };
    const got = [];
    const errors = [];
    const rx = UdpSocket.open({ address: '127.0.0.1', port: 0, recvBufferSize: 8 << 20, onMessage: (m) => got.push(m.readUInt16BE(0)) });
    const tx = UdpSocket.open({ address: '127.0.0.1', port: 0, sendBufferSize: 4096, onMessage() {}, onError: (e) => errors.push(e.message) });
    const out = {};
    for (let i = 0; i < 300; i++) { const m = Buffer.alloc(1000); m.writeUInt16BE(i); tx.send(m, '127.0.0.1', rx.port); }
    tx.flush();
    out.afterFlush = tx.stats();
    await until(() => got.length === 300);
    out.inOrder = got.length === 300 && got.every((v, i) => v === i);
    out.drained = tx.stats();
    for (let i = 0; i < 4200; i++) tx.send(Buffer.alloc(100), '127.0.0.1', rx.port);
    await new Promise((r) => setImmediate(r));
    out.full = tx.stats();
    await until(() => tx.stats().queued === 0);
    await new Promise((r) => setTimeout(r, 20));
    out.end = tx.stats();
    out.errors = errors.length;
    out.errorSample = errors[0];
    tx.close();
    rx.close();
    console.log(JSON.stringify(out));
  `;
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile('unshare', ['-n', process.execPath, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 25_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.ok(out.afterFlush.queued > 0 && out.afterFlush.sent < 300, `the send buffer filled up: ${JSON.stringify(out.afterFlush)}`);
  assert.equal(out.inOrder, true, 'all 300 arrived, in order, once the socket was writable again');
  assert.deepEqual([out.drained.sent, out.drained.sendErrors, out.drained.queued], [300, 0, 0]);
  assert.ok(out.full.queued <= 4096, `the queue is bounded: ${out.full.queued}`);
  assert.ok(out.full.queueFull > 0, 'datagrams beyond the bound were refused');
  assert.equal(out.errors, out.end.queueFull, 'each refused datagram went to onError');
  assert.match(out.errorSample, /^send to 127\.0\.0\.1:\d+ failed: send queue full$/);
  assert.deepEqual([out.end.sent, out.end.queued, out.end.sendErrors], [300 + 4200 - out.end.queueFull, 0, 0]);
});

test('udp: an open socket keeps the process alive, an unref()ed one does not; ref() undoes unref()', { skip: skip4, timeout: 20_000 }, async () => {
  const code = (calls: string) => `
    import { UdpSocket } from ${JSON.stringify(UDP_URL)};
    const s = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage() {} });
    ${calls}
  `;
  const t0 = Date.now();
  const unrefd = await child(code('s.unref();'), [], 5000);
  assert.deepEqual([unrefd.code, unrefd.signal], [0, null], `exits on its own (${unrefd.stderr})`);
  assert.ok(Date.now() - t0 < 5000);
  const kept = await child(code("console.log('open');"), [], 1500);
  assert.deepEqual([kept.signal, kept.stdout], ['SIGTERM', 'open\n'], 'a ref()ed socket keeps it running (killed at the timeout)');
  const rerefd = await child(code("s.unref().ref(); console.log('open');"), [], 1500);
  assert.deepEqual([rerefd.signal, rerefd.stdout], ['SIGTERM', 'open\n']);
  // an unref()ed socket still sends what was queued before the process exits
  const last = await child(code(`
    import dgram from 'node:dgram';
    const d = dgram.createSocket('udp4');
    d.bind(0, '127.0.0.1', () => {
      d.on('message', (m) => { console.log('got ' + m); d.close(); });
      s.send(Buffer.from('last words'), '127.0.0.1', d.address().port);
      s.unref();
    });
  `), [], 5000);
  assert.equal(last.code, 0, last.stderr);
  assert.equal(last.stdout.trim(), 'got last words');
});

test('udp: process exit, worker exit and termination with sockets open, and GC of closed sockets, do not crash', { skip: skip4, timeout: 30_000 }, async () => {
  const code = `
    import { Worker } from 'node:worker_threads';
    import { UdpSocket } from ${JSON.stringify(UDP_URL)};
    // The worker inherits --input-type=module: its eval'd code is a module too.
    const inWorker = (exit) => \`
      import { parentPort } from 'node:worker_threads';
      import { UdpSocket } from ${JSON.stringify(UDP_URL)};
      const a = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage() {} });
      const b = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage() {} });
      for (let i = 0; i < 10; i++) a.send(Buffer.alloc(100), '127.0.0.1', b.port);
      parentPort.postMessage('open');
      \${exit}
    \`;
    const run = (exit, terminate) => new Promise((resolve, reject) => {
      const w = new Worker(inWorker(exit), { eval: true });
      w.on('message', () => { if (terminate) w.terminate(); });
      w.on('error', reject);
      w.on('exit', resolve);
    });
    console.log('exit', await run('process.exit(3)', false));
    console.log('terminate', await run('', true));
    for (let i = 0; i < 300; i++) UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage() {} }).close();
    globalThis.gc();
    await new Promise((r) => setTimeout(r, 20));
    globalThis.gc();
    const s = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage() {} });
    s.send(Buffer.from('queued at exit'), '127.0.0.1', s.port);
    console.log('done');
    process.exit(0);
  `;
  const r = await child(code, ['--expose-gc'], 20_000);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['exit 3', 'terminate 1', 'done']);
});

test('udp: 2,000 random argument combinations for send() and open() throw only TypeError / RangeError / Error', { skip: skip4, timeout: 30_000 }, async () => {
  let seed = 0x2545f491;
  const rnd = (n: number) => ((seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) % n);
  const sink4 = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage() {} });
  const sink6 = skip6 ? undefined : UdpSocket.open({ address: '::1', port: 0, onMessage() {} });
  const errors: Error[] = [];
  const onError = (e: Error) => errors.push(e);
  const s4 = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage() {}, onError });
  const s6 = skip6 ? undefined : UdpSocket.open({ address: '::1', port: 0, onMessage() {}, onError });
  // Only addresses that stay on this machine: loopback, or ones the kernel refuses locally.
  const addresses = ['127.0.0.1', '127.0.0.1', '::1', '::1', '::ffff:127.0.0.1', '0.0.0.1', '::', '0.0.0.0', '', 'x', '1.2.3', '::1%lo', '::1%1', '::1%%', 'fe80::1%', '::ffff:0.0.0.1', '999.1.1.1', '127.0.0.1\0', 'a'.repeat(5000)];
  const ports = [sink4.port, sink4.port, sink4.port, sink6?.port ?? sink4.port, sink6?.port ?? sink4.port, 0, -1, 1.5, 65536, NaN, Infinity, -Infinity, 2 ** 53, -0];
  const values: unknown[] = [undefined, null, true, 0, '', 'str', {}, [], () => {}, Symbol('s'), 10n, new ArrayBuffer(8), new Uint16Array(4), new Float64Array(1), new DataView(new ArrayBuffer(1)), new Uint8ClampedArray(3), Object.create(Uint8Array.prototype)];
  const buffers = [Buffer.alloc(0), Buffer.from('m'), randomBytes(1500), Buffer.alloc(65507), Buffer.alloc(65508), Buffer.alloc(65528), new Uint8Array(new SharedArrayBuffer(16)), Buffer.alloc(64).subarray(10, 20)];
  const pick = <T>(a: T[]) => a[rnd(a.length)];
  const arg = (kind: 'buf' | 'addr' | 'port') => {
    const r = rnd(10);
    if (r < 9) return kind === 'buf' ? pick(buffers) : kind === 'addr' ? pick(addresses) : pick(ports);
    return pick(values);
  };
  let ok = 0;
  let opened = 0;
  try {
    for (let i = 0; i < 2000; i++) {
      try {
        if (rnd(5) === 0) {
          const opts = rnd(8) === 0 ? pick(values) : { address: arg('addr'), port: rnd(3) === 0 ? 0 : arg('port'), onMessage: rnd(6) === 0 ? pick(values) : () => {}, onError: rnd(3) === 0 ? pick(values) : undefined, recvBufferSize: rnd(4) === 0 ? arg('port') : undefined };
          UdpSocket.open(opts as never).close();
          opened++;
        } else {
          const s = s6 && rnd(2) ? s6 : s4;
          const a = [arg('buf'), arg('addr'), arg('port'), rnd(2) ? undefined : arg('buf')].slice(0, rnd(8) ? 4 : rnd(4));
          (s.send as (...x: unknown[]) => void)(...a);
          ok++;
        }
      } catch (e) {
        assert.ok(e instanceof TypeError || e instanceof RangeError || (e instanceof Error && /^bind |^socket /.test(e.message)), `case ${i}: ${String(e)}`);
      }
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(ok > 100 && opened > 5, `some calls succeed (${ok} sends, ${opened} opens)`);
    assert.equal(s4.stats().queued, 0);
    for (const e of errors) assert.match(e.message, /^send to .* failed: /);
  } finally {
    for (const s of [sink4, sink6, s4, s6]) s?.close();
  }
});
