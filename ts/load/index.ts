// The load tester: many complete setups through one Gateway against a real peer.
export { LoadTester, formatProgress, formatResult, percentile } from './load-tester.js';
export type { LoadOptions, LoadProgress, LoadResult } from './load-tester.js';
