// The exchanges are chains of state types: each state's handle() can only return its own successor. These
// checks are made by the compiler (a wrong line here fails `tsc`); the test only records that they ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AmSaReplied, AmSaSent } from '../../ts/ike/aggressive-mode.js';
import type { MmAuthSent, MmKeReplied, MmKeSent, MmSaReplied, MmSaSent } from '../../ts/ike/main-mode.js';
import type { Phase1Done } from '../../ts/ike/phase1-core.js';
import type { QmAnswered, QmDone, QmOffered } from '../../ts/ike/quick-mode.js';

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Handler = { handle(...args: never[]): Promise<unknown> };
/** The state a state's handle() leads to. */
type Next<S extends Handler> = Extract<Awaited<ReturnType<S['handle']>>, { next: unknown }>['next'];

const chains: true[] = [
  // Main Mode, initiator: MM2 -> MM3 sent, MM4 -> MM5 sent, MM6 -> done.
  true as Equals<Next<MmSaSent>, MmKeSent>,
  true as Equals<Next<MmKeSent>, MmAuthSent>,
  true as Equals<Next<MmAuthSent>, Phase1Done>,
  // Main Mode, responder: MM3 -> MM4 sent, MM5 -> MM6 sent and done.
  true as Equals<Next<MmSaReplied>, MmKeReplied>,
  true as Equals<Next<MmKeReplied>, Phase1Done>,
  // Aggressive Mode: AM2 -> AM3 sent and done; AM3 -> done.
  true as Equals<Next<AmSaSent>, Phase1Done>,
  true as Equals<Next<AmSaReplied>, Phase1Done>,
  // Quick Mode: QM2 -> QM3 sent and done; QM3 -> done.
  true as Equals<Next<QmOffered>, QmDone>,
  true as Equals<Next<QmAnswered>, QmDone>,
];

/** Never called: the assignments are for the compiler. */
function impossible(mm2: Next<MmSaSent>, mm4: Next<MmKeSent>, qm2: Next<QmOffered>): unknown[] {
  // @ts-expect-error message 2 leads to the KE step, never straight to authentication
  const skipped: MmAuthSent = mm2;
  // @ts-expect-error an initiator's step never becomes a responder's
  const crossed: MmKeReplied = mm4;
  // @ts-expect-error QM2 ends the initiator's exchange: no waiting state follows it
  const again: QmAnswered = qm2;
  return [skipped, crossed, again];
}

test('each state type leads only to its successor (checked by tsc)', () => {
  assert.equal(chains.length, 9);
  assert.equal(typeof impossible, 'function');
});
