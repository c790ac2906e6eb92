// ISAKMP (IKEv1) codec: bytes <-> typed messages. Pure: no crypto, no I/O. See README.md in this folder.
export * from './types.js';
export * from './constants.js';
