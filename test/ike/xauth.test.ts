import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthMethod } from '../../ts/isakmp/index.js';
import {
  LoginLimiter,
  RemoteAccessClient,
  RemoteAccessServer,
  UserFile,
  UserFileError,
  hashPassword,
  userFileLine,
  verifyPassword,
  type RemoteAccessClientOptions,
  type RemoteAccessServerOptions,
} from '../../ts/ike/index.js';
import { Pump, crypto, xauthPhase1 } from './remote-access-pair.js';

const FAST = { N: 1024, r: 8, p: 1 };
const RETRANSMIT = { tries: 2, timeoutMs: 1000, factor: 2 };

function checker(users: Record<string, string>) {
  const calls: string[] = [];
  return {
    calls,
    verify: async (u: string, p: string) => {
      calls.push(u);
      return users[u] === p;
    },
  };
}

async function session(server: Omit<RemoteAccessServerOptions, 'peer'> & { peer?: string }, client: RemoteAccessClientOptions) {
  const { i, r } = await xauthPhase1();
  const s = new RemoteAccessServer(crypto, r, { peer: '10.99.0.1', retransmit: RETRANSMIT, ...server });
  const c = new RemoteAccessClient(crypto, i, { retransmit: RETRANSMIT, ...client });
  const pump = new Pump(c, s);
  pump.take('c', c.start(pump.now));
  pump.take('s', s.start(pump.now));
  await pump.run();
  return { s, c, pump };
}

test('xauth: phase 1 negotiates XAUTH_INIT_PSK (65001) with the PSK key derivation', async () => {
  const { i, r } = await xauthPhase1();
  assert.equal(i.proposal.authMethod, AuthMethod.XAUTH_INIT_PSK);
  assert.equal(r.proposal.authMethod, AuthMethod.XAUTH_INIT_PSK);
  assert.deepEqual(i.skeyidA, r.skeyidA);
});

test('xauth: a responder that requires XAUTH_INIT_PSK refuses a plain-PSK initiator in phase 1', async () => {
  const { parseIkeProposal } = await import('../../ts/ike/index.js');
  const { policy, runPhase1 } = await import('./pair.js');
  const psk = parseIkeProposal('aes128-sha256-modp2048');
  const xauth = parseIkeProposal('aes128-sha256-modp2048', { authMethod: AuthMethod.XAUTH_INIT_PSK });
  assert.ok(psk.ok && xauth.ok);
  const res = await runPhase1(crypto, policy({ proposals: psk.value }), [policy({ proposals: xauth.value })]);
  assert.equal(res.responder.sa, undefined);
  assert.equal(res.initiator.sa, undefined);
  assert.equal(res.responder.error?.kind, 'NO_PROPOSAL_CHOSEN');
});

test('xauth: correct credentials -> SET OK, ACK, both sides authenticated', async () => {
  const v = checker({ alice: 's3cret' });
  const { s, c, pump } = await session({ xauth: { verify: v.verify } }, { xauth: { user: 'alice', password: 's3cret' }, modeConfig: 'none' });
  assert.equal(s.authenticated, true);
  assert.equal(s.user, 'alice');
  assert.equal(c.authenticated, true);
  assert.deepEqual(v.calls, ['alice']);
  assert.deepEqual(pump.s.events, [{ type: 'xauthOk', user: 'alice' }]);
  // REQUEST, REPLY, SET, ACK.
  assert.equal(pump.wire.length, 4);
  assert.deepEqual(pump.wire.map((w) => w.from), ['s', 'c', 's', 'c']);
});

test('xauth: the server is not authenticated until XAUTH completes, and a peer that skips XAUTH fails', async () => {
  const { i, r } = await xauthPhase1();
  const s = new RemoteAccessServer(crypto, r, { peer: '10.99.0.1', retransmit: RETRANSMIT, xauth: { verify: async () => true }, modeConfig: {} });
  assert.equal(s.authenticated, false);
  // A client without credentials ignores the XAUTH request and pulls Mode-Config straight away.
  const c = new RemoteAccessClient(crypto, i, { retransmit: RETRANSMIT, modeConfig: 'pull' });
  const pump = new Pump(c, s);
  pump.take('s', s.start(pump.now));
  pump.take('c', c.start(pump.now));
  await pump.run();
  assert.equal(s.authenticated, false);
  assert.equal(s.failed, true);
  assert.ok(pump.s.dropped.some((d) => /before XAUTH/.test(d)), pump.s.dropped.join('; '));
  assert.ok(pump.s.events.some((e) => e.type === 'xauthFailed' && /no XAUTH answer/.test(e.reason)));
  assert.equal(c.config, null);
});

test('xauth: a wrong password is asked again, then accepted', async () => {
  let tries = 0;
  const verify = async (u: string, p: string) => {
    tries++;
    return u === 'bob' && p === 'right' && tries === 2;
  };
  const { s, c, pump } = await session({ xauth: { verify, maxAttempts: 3 } }, { xauth: { user: 'bob', password: 'right' }, modeConfig: 'none' });
  assert.equal(tries, 2);
  assert.ok(s.authenticated && c.authenticated);
  assert.deepEqual(pump.s.events.map((e) => e.type), ['xauthRetry', 'xauthOk']);
});

test('xauth: wrong password on every attempt -> SET FAIL, ACK, nobody authenticated', async () => {
  const v = checker({ bob: 'right' });
  const { s, c, pump } = await session({ xauth: { verify: v.verify, maxAttempts: 2 } }, { xauth: { user: 'bob', password: 'wrong' }, modeConfig: 'pull' });
  assert.deepEqual(v.calls, ['bob', 'bob']);
  assert.equal(s.authenticated, false);
  assert.equal(s.failed, true);
  assert.equal(c.authenticated, false);
  assert.equal(c.failed, true);
  assert.equal(c.config, null);
  assert.deepEqual(pump.s.events.map((e) => e.type), ['xauthRetry', 'xauthFailed']);
  assert.ok(pump.c.events.some((e) => e.type === 'xauthFailed'));
  // 2x (REQUEST, REPLY), SET, ACK; no Mode-Config after a failure.
  assert.equal(pump.wire.length, 6);
});

test('xauth: failed logins are rate limited per peer address (3 failures -> refused for 30 s)', async () => {
  let t = 0;
  const limiter = new LoginLimiter({ maxFailures: 3, blockMs: 30_000, clock: () => t });
  const v = checker({ carol: 'pw' });
  // Five attempts allowed per SA, but the limiter stops the third failure.
  const a = await session({ xauth: { verify: v.verify, maxAttempts: 5, limiter } }, { xauth: { user: 'carol', password: 'nope' }, modeConfig: 'none' });
  assert.equal(v.calls.length, 3);
  assert.ok(a.pump.s.events.some((e) => e.type === 'xauthFailed' && /too many failed logins/.test(e.reason)));
  assert.equal(limiter.allowed('10.99.0.1'), false);
  assert.equal(limiter.allowed('10.99.0.7'), true);
  // A new SA from the same address, even with the right password, is refused without asking.
  t = 29_999;
  const b = await session({ xauth: { verify: v.verify, limiter } }, { xauth: { user: 'carol', password: 'pw' }, modeConfig: 'none' });
  assert.equal(v.calls.length, 3);
  assert.equal(b.s.authenticated, false);
  assert.equal(b.c.failed, true);
  assert.ok(b.pump.s.events.some((e) => e.type === 'xauthFailed' && /refused for 1 s/.test(e.reason)));
  // After the block: allowed again, and a success clears the count.
  t = 30_000;
  const c = await session({ xauth: { verify: v.verify, limiter } }, { xauth: { user: 'carol', password: 'pw' }, modeConfig: 'none' });
  assert.equal(c.s.authenticated, true);
  assert.equal(limiter.allowed('10.99.0.1'), true);
});

test('xauth: LoginLimiter counts per address and forgets after the block', () => {
  let t = 100;
  const l = new LoginLimiter({ maxFailures: 2, blockMs: 1000, clock: () => t });
  l.failure('a');
  assert.ok(l.allowed('a'));
  l.failure('a');
  assert.equal(l.allowed('a'), false);
  assert.equal(l.retryAfterMs('a'), 1000);
  t = 600;
  l.failure('a');
  assert.equal(l.retryAfterMs('a'), 500, 'a failure while blocked does not extend the block');
  assert.ok(l.allowed('b'));
  t = 1100;
  assert.ok(l.allowed('a'));
  l.failure('a');
  assert.ok(l.allowed('a'), 'the count restarted after the block');
  assert.throws(() => new LoginLimiter({ maxFailures: 0 }), RangeError);
});

test('xauth: LoginLimiter counts per user too, and a success clears only that user', () => {
  let t = 0;
  const l = new LoginLimiter({ maxFailures: 3, blockMs: 1000, clock: () => t });
  // one user guessed at from three addresses: the user is blocked everywhere, the addresses are not
  for (const a of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) l.failure(a, 'alice');
  assert.equal(l.allowed('10.0.0.9', 'alice'), false);
  assert.equal(l.allowed('10.0.0.1', 'bob'), true);
  assert.equal(l.allowed('10.0.0.1'), true);
  // from one address (a NAT): two wrong guesses at bob, a valid login by carol, one more guess at dave
  l.failure('192.0.2.1', 'bob');
  l.failure('192.0.2.1', 'bob');
  l.success('carol');
  assert.equal(l.allowed('192.0.2.1', 'dave'), true, 'two failures so far');
  l.failure('192.0.2.1', 'dave');
  assert.equal(l.allowed('192.0.2.1'), false, "carol's success did not reset the address");
  assert.equal(l.allowed('192.0.2.1', 'carol'), false, 'a blocked address is refused for every user');
  assert.equal(l.allowed('192.0.2.2', 'bob'), true, 'bob failed twice only');
  // a success clears its user's count and only that
  l.failure('198.51.100.1', 'erin');
  l.failure('198.51.100.2', 'erin');
  l.success('erin');
  l.failure('198.51.100.3', 'erin');
  assert.equal(l.allowed('198.51.100.4', 'erin'), true);
  t = 1000;
  assert.equal(l.allowed('10.0.0.9', 'alice'), true, 'the user block ends');
  assert.equal(l.allowed('192.0.2.1'), true, 'the address block ends');
});

test('xauth: one valid account does not reset the address: guesses at another user stay limited', async () => {
  const limiter = new LoginLimiter({ maxFailures: 3, blockMs: 30_000, clock: () => 0 });
  const v = checker({ mallory: 'mine', victim: 'secret' });
  // mallory guesses at victim twice per SA and logs in as herself in between; the address count is not reset
  for (let round = 0; round < 2; round++) {
    await session({ xauth: { verify: v.verify, maxAttempts: 1, limiter } }, { xauth: { user: 'victim', password: `guess${round}` }, modeConfig: 'none' });
    const ok = await session({ xauth: { verify: v.verify, limiter } }, { xauth: { user: 'mallory', password: 'mine' }, modeConfig: 'none' });
    assert.equal(ok.s.authenticated, true);
  }
  const third = await session({ xauth: { verify: v.verify, maxAttempts: 1, limiter } }, { xauth: { user: 'victim', password: 'guess2' }, modeConfig: 'none' });
  assert.ok(third.pump.s.events.some((e) => e.type === 'xauthFailed' && /too many failed logins/.test(e.reason)));
  const calls = v.calls.length;
  // now even the right password for victim, from that address, is refused without a check
  const fourth = await session({ xauth: { verify: v.verify, limiter } }, { xauth: { user: 'victim', password: 'secret' }, modeConfig: 'none' });
  assert.equal(fourth.s.authenticated, false);
  assert.equal(v.calls.length, calls);
  // and victim is blocked from other addresses too (3 failures for the user)
  const elsewhere = await session({ peer: '10.99.0.50', xauth: { verify: v.verify, limiter } }, { xauth: { user: 'victim', password: 'secret' }, modeConfig: 'none' });
  assert.equal(elsewhere.s.authenticated, false);
  assert.ok(elsewhere.pump.s.events.some((e) => e.type === 'xauthFailed' && /too many failed logins for 'victim'/.test(e.reason)));
  assert.equal(v.calls.length, calls);
});

test('xauth: LoginLimiter.begin counts checks in flight, so parallel SAs cannot exceed the limit', () => {
  const l = new LoginLimiter({ maxFailures: 3, blockMs: 1000, clock: () => 0 });
  const checks = ['u1', 'u2', 'u3'].map((u) => l.begin('192.0.2.9', u));
  assert.ok(checks.every((c) => c !== null));
  assert.equal(l.begin('192.0.2.9', 'u4'), null, 'three checks in flight: a fourth would exceed the limit');
  assert.notEqual(l.begin('192.0.2.10', 'u4'), null, 'another address may');
  checks[0]!(true);
  assert.notEqual(l.begin('192.0.2.9', 'u5'), null, 'a success ends its check without a failure');
  checks[1]!(false);
  checks[2]!(false);
  checks[2]!(false); // a second call is ignored
  assert.equal(l.allowed('192.0.2.9'), true, 'two failures so far');
});

test('xauth: five SAs guessing at once from one address: at most blockAfter passwords are checked', async () => {
  const limiter = new LoginLimiter({ maxFailures: 3, blockMs: 30_000, clock: () => 0 });
  let checked = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const slow = async (_u: string, _p: string) => {
    checked++;
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    await new Promise((r) => setTimeout(r, 300));
    inFlight--;
    return false;
  };
  const all = await Promise.all(
    Array.from({ length: 5 }, (_, i) => session({ xauth: { verify: slow, maxAttempts: 1, limiter } }, { xauth: { user: `user${i}`, password: 'guess' }, modeConfig: 'none' })),
  );
  assert.equal(checked, 3);
  assert.equal(maxInFlight, 3, 'the three checks ran at the same time: the SAs did overlap');
  assert.ok(all.every((x) => x.s.authenticated === false));
  assert.equal(limiter.allowed('10.99.0.1'), false);
});

test('xauth: scrypt user file verifies, rejects wrong passwords, unknown users and malformed lines', async () => {
  const h = await hashPassword('pässword', FAST);
  assert.match(h, /^scrypt\$1024\$8\$1\$[0-9a-f]{32}\$[0-9a-f]{64}$/);
  assert.equal(await verifyPassword('pässword', h), true);
  assert.equal(await verifyPassword('password', h), false);
  assert.equal(await verifyPassword('x', 'scrypt$3$8$1$00$00'), false);
  const line = await userFileLine('dave', 'hunter2', FAST);
  assert.ok(line.startsWith('dave:scrypt$'));
  const f = new UserFile(`# users\n\n${line}\n${await userFileLine('erin', 'pw', FAST)}\n`);
  assert.equal(f.size, 2);
  assert.equal(await f.verify('dave', 'hunter2'), true);
  assert.equal(await f.verify('dave', 'hunter3'), false);
  assert.equal(await f.verify('erin', 'hunter2'), false);
  assert.equal(await f.verify('mallory', 'hunter2'), false);
  assert.throws(() => new UserFile('dave:plaintext\n'), UserFileError);
  assert.throws(() => new UserFile(`${line}\n${line}\n`), /twice/);
  await assert.rejects(userFileLine('a:b', 'x', FAST), RangeError);
  // As the XAUTH backend.
  const { s } = await session({ xauth: { verify: f.verify } }, { xauth: { user: 'dave', password: 'hunter2' }, modeConfig: 'none' });
  assert.equal(s.authenticated, true);
});

test('xauth: ike passwd prints a user-file line from the password on stdin', async () => {
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const main = fileURLToPath(new URL('../../ts/cli/main.js', import.meta.url));
  const r = spawnSync(process.execPath, [main, 'passwd', 'frank'], { input: 'open sesame\n', encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const line = r.stdout.trim();
  assert.match(line, /^frank:scrypt\$\d+\$\d+\$\d+\$[0-9a-f]+\$[0-9a-f]+$/);
  assert.equal(await new UserFile(line).verify('frank', 'open sesame'), true);
  const bad = spawnSync(process.execPath, [main, 'passwd'], { input: 'x\n', encoding: 'utf8' });
  assert.equal(bad.status, 2);
});
