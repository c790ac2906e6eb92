// Traffic selectors that load but probably do not do what was meant (warnings, not errors: a config may mean it):
// - two connections whose remoteTs overlap: traffic to the common addresses can only go into one tunnel, and
//   which one depends on which connection is up;
// - a connection whose localTs equals its remoteTs: the tunnel would carry a network's traffic to itself,
//   usually the same subnet pasted twice.
import type { Problems } from './check.js';
import { parseAddress, type SelectorAddress } from './values.js';

interface Span {
  family: 4 | 6;
  first: bigint;
  last: bigint;
  text: string;
}

function toBig(address: string): { family: 4 | 6; value: bigint } {
  const a = parseAddress(address)!;
  return { family: a.family, value: BigInt(`0x${a.bytes.toString('hex')}`) };
}

/** The addresses a selector covers, as one inclusive span. */
export function span(s: SelectorAddress): Span {
  switch (s.kind) {
    case 'ipv4':
    case 'ipv6': {
      const a = toBig(s.address);
      return { family: a.family, first: a.value, last: a.value, text: s.address };
    }
    case 'ipv4-subnet':
    case 'ipv6-subnet': {
      const [net, len] = s.subnet.split('/') as [string, string];
      const a = toBig(net);
      const hostBits = BigInt((a.family === 4 ? 32 : 128) - Number(len));
      return { family: a.family, first: a.value, last: a.value + (1n << hostBits) - 1n, text: s.subnet };
    }
    case 'ipv4-range':
    case 'ipv6-range': {
      const a = toBig(s.start);
      return { family: a.family, first: a.value, last: toBig(s.end).value, text: `${s.start}-${s.end}` };
    }
  }
}

const overlap = (a: Span, b: Span) => a.family === b.family && a.first <= b.last && b.first <= a.last;

export interface SelectorsOf {
  name: string;
  localTs: SelectorAddress[] | 'dynamic';
  remoteTs: SelectorAddress[] | 'dynamic';
}

/** Warns about overlapping remoteTs between connections and localTs equal to remoteTs within one. */
export function warnSelectorOverlaps(p: Problems, connections: readonly SelectorsOf[]): void {
  const spans = (ts: SelectorAddress[] | 'dynamic') => (ts === 'dynamic' ? [] : ts.map(span));
  for (const c of connections) {
    const local = spans(c.localTs).map((s) => `${s.family}|${s.first}|${s.last}`).sort();
    const remote = spans(c.remoteTs).map((s) => `${s.family}|${s.first}|${s.last}`).sort();
    if (local.length > 0 && local.join() === remote.join()) {
      p.warn(`connections.${c.name}.remoteTs`, 'is the same as localTs: the tunnel would carry traffic from those addresses to themselves; is one of them pasted twice?');
    }
  }
  // A sweep over all remote spans sorted by their first address (n log n, for configs with many connections):
  // each span is compared with the one reaching furthest so far, and each pair of connections is reported once.
  const all = connections.flatMap((c, index) => spans(c.remoteTs).map((s) => ({ ...s, index })));
  all.sort((x, y) => x.family - y.family || (x.first < y.first ? -1 : x.first > y.first ? 1 : x.index - y.index));
  const reported = new Set<string>();
  let reach: (typeof all)[number] | undefined;
  for (const s of all) {
    if (reach && overlap(reach, s) && reach.index !== s.index) {
      const [first, later] = reach.index < s.index ? [reach, s] : [s, reach];
      const pair = `${first.index}|${later.index}`;
      if (!reported.has(pair)) {
        reported.add(pair);
        p.warn(
          `connections.${connections[later.index]!.name}.remoteTs`,
          `${later.text} overlaps ${first.text} in connections.${connections[first.index]!.name}.remoteTs: traffic to the common addresses can go into only one of the two tunnels`,
        );
      }
    }
    if (!reach || reach.family !== s.family || s.last > reach.last) reach = s;
  }
}
