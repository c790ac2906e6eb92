// The IKEv1 exchanges as sans-I/O state machines.
export * from './errors.js';
export * from './proposals.js';
export * from './cookie.js';
export * from './vendor.js';
export * from './retransmit.js';
export { Phase1, ikev1KeylogLine, natFloat } from './phase1.js';
export type { Phase1Policy, Phase1Env, Phase1Output, IsakmpSa, NatState, StepResult } from './phase1.js';
export * from './phase2-crypto.js';
export * from './traffic-selectors.js';
export * from './esp-sa-payload.js';
export * from './informational.js';
export * from './quick-mode.js';
export * from './isakmp-sa-context.js';
export * from './esp-proposals.js';
export * from './transaction.js';
export * from './modecfg.js';
export * from './xauth-users.js';
export * from './remote-access.js';
