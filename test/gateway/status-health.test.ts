// What `ike status` prints of admission, error counts and ESP drops (ts/cli/status.ts), from a status as the
// gateway gives it; nothing when there is nothing to say.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatStatus } from '../../ts/cli/status.js';
import type { GatewayStatus } from '../../ts/gateway/index.js';

const quiet: GatewayStatus = {
  listen: { address: '10.99.0.1', port: 500, nattPort: 4500 },
  dataplane: null,
  esp: { received: 0, drops: { unknownSpi: 0, authFailed: 0, replay: 0, malformed: 0, other: 0 } },
  halfOpen: 0,
  admission: { busy: false, busyEntered: 0, admitted: 0, evicted: 0, repeatsAdmitted: 0, newPerSecond: 2000, refused: { perPeer: 0, full: 0, busyPerPeer: 0, busyRate: 0, busyAggressive: 0 } },
  errors: { total: 0, emitted: 0, repeats: 0, suppressed: 0, byKind: {}, top: [] },
  sas: [],
};

test('ike status: admission, errors and ESP drops get a line each when there is something to say', () => {
  assert.equal(formatStatus(quiet).trim().split('\n').length, 1, 'a quiet gateway: the header line alone');
  const busy: GatewayStatus = {
    ...quiet,
    halfOpen: 10_000,
    esp: { received: 338, drops: { unknownSpi: 45_000, authFailed: 201, replay: 0, malformed: 0, other: 0 } },
    admission: { ...quiet.admission, busy: true, busyEntered: 1, admitted: 30_643, evicted: 20_642, refused: { ...quiet.admission.refused, busyRate: 274 } },
    errors: { total: 72_290, emitted: 23, repeats: 6, suppressed: 72_261, byKind: { PAYLOAD_MALFORMED: { count: 72_290, suppressed: 72_261 } }, top: [{ kind: 'PAYLOAD_MALFORMED', source: '10.99.0.9', count: 72_000, suppressed: 71_997, last: 'x', lastAt: '' }] },
  };
  const text = formatStatus(busy);
  assert.match(text, /esp in 338 \(authenticated\), dropped: 45000 unknownSpi, 201 authFailed/);
  assert.match(text, /admission: BUSY .* 30643 message 1s admitted, 20642 unanswered exchanges dropped, refused: busyRate 274/);
  assert.match(text, /errors: 72290 \(23 reported, 6 repeats, 72261 held back\); most: PAYLOAD_MALFORMED from 10\.99\.0\.9 x72000/);
});

test('ike status: the data plane line names its workers and the SAs each owns when there are several', () => {
  const drops = { unknownSpi: 0, authFailed: 0, replay: 0, malformed: 0, other: 0, selectorMismatch: 0 };
  const dp = { tun: 'ike0', keepalivesReceived: 0, espSent: 10, espReceived: 9, drops };
  const two = formatStatus({ ...quiet, dataplane: { ...dp, workers: [{ sas: 4, espSent: 6, espReceived: 5 }, { sas: 2, espSent: 4, espReceived: 4 }] } });
  assert.match(two, /data plane ike0 \(esp out 10 in 9, keepalives in 0, 2 workers with 4\/2 SAs\)/);
  const one = formatStatus({ ...quiet, dataplane: { ...dp, workers: [{ sas: 6, espSent: 10, espReceived: 9 }] } });
  assert.match(one, /data plane ike0 \(esp out 10 in 9, keepalives in 0\)/);
});
