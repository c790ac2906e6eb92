// Public entry point of ikev1-engine. Each layer re-exports its own public API from its index.
export * from './crypto/index.js';
export * from './isakmp/index.js';
export * from './esp/index.js';
export * from './ike/index.js';
export * from './gateway/index.js';
