// Caps on counts inside one message. A peer cannot make the parser build more than this many objects;
// every cap is far above what any real IKEv1 implementation sends (strongSwan offers at most a few dozen
// proposals, a Delete normally carries one SPI).

/** Top-level payloads in one message (or one decrypted body). */
export const MAX_PAYLOADS = 256;
/** Proposals in one SA payload. */
export const MAX_PROPOSALS = 64;
/** Transforms in one proposal. */
export const MAX_TRANSFORMS = 64;
/** Data attributes in one transform. */
export const MAX_TRANSFORM_ATTRIBUTES = 64;
/** SPIs in one Delete payload. */
export const MAX_DELETE_SPIS = 1024;
/** Attributes in one mode-config (Attribute) payload. */
export const MAX_MODECFG_ATTRIBUTES = 512;
