// IANA registries for IKEv1 as `const` objects (names follow the RFC / IANA / draft names).
// Sources: RFC 2408 (ISAKMP) 3.1 / 3.14.1, RFC 2407 (IPsec DOI) 4.4-4.6, RFC 2409 (IKE) Appendix A,
// RFC 3947 (NAT-T), RFC 3706 (DPD), RFC 4754 (ECDSA), RFC 4868 (SHA-2), RFC 5903 / 5114 (groups),
// draft-dukes-ike-mode-cfg-02, draft-beaulieu-ike-xauth-02, draft-ietf-ipsec-isakmp-hybrid-auth-05,
// Cisco Unity attribute numbers as used by strongSwan / Libreswan / racoon (cross-checked against Libreswan's
// include/ietf_constants.h and racoon's isakmp_unity.h).

type Registry = Readonly<Record<string, number>>;

/** Reverse lookup: value -> name, or `UNKNOWN(<value>)`. */
export function nameOf(registry: Registry, value: number): string {
  let map = reverseCache.get(registry);
  if (map === undefined) {
    map = new Map();
    // First name wins, so aliases declared later do not hide the canonical name.
    for (const [k, v] of Object.entries(registry)) if (!map.has(v)) map.set(v, k);
    reverseCache.set(registry, map);
  }
  return map.get(value) ?? `UNKNOWN(${value})`;
}
const reverseCache = new WeakMap<Registry, Map<number, string>>();

/** ISAKMP header version octet for IKEv1: major 1, minor 0. */
export const ISAKMP_VERSION = 0x10;
export const ISAKMP_HEADER_LENGTH = 28;
export const GENERIC_PAYLOAD_HEADER_LENGTH = 4;
export const COOKIE_LENGTH = 8;

/** RFC 2408 3.1 + RFC 2409 Appendix A + mode-cfg draft (6). */
export const ExchangeType = {
  NONE: 0,
  BASE: 1,
  IDENTITY_PROTECTION: 2, // Main Mode
  AUTHENTICATION_ONLY: 3,
  AGGRESSIVE: 4,
  INFORMATIONAL: 5,
  TRANSACTION: 6, // mode-config / XAUTH (draft-dukes-ike-mode-cfg)
  QUICK_MODE: 32,
  NEW_GROUP_MODE: 33,
} as const;

/** RFC 2408 3.1 "Next Payload" + RFC 3547/6407 (GDOI) + RFC 3947 + drafts / private use. */
export const PayloadType = {
  NONE: 0,
  SA: 1,
  PROPOSAL: 2,
  TRANSFORM: 3,
  KE: 4,
  ID: 5,
  CERT: 6,
  CR: 7,
  HASH: 8,
  SIG: 9,
  NONCE: 10,
  NOTIFICATION: 11,
  DELETE: 12,
  VENDOR_ID: 13,
  ATTRIBUTE: 14, // mode-config
  SAK: 15, // GDOI SA KEK (RFC 6407), not interpreted here
  SAT: 16, // GDOI SA TEK
  KD: 17, // GDOI key download
  SEQ: 18, // GDOI sequence number
  POP: 19, // GDOI proof of possession
  NAT_D: 20, // RFC 3947
  NAT_OA: 21, // RFC 3947
  GAP: 22, // GDOI group associated policy (RFC 6407)
  NAT_D_DRAFT: 130, // draft-ietf-ipsec-nat-t-ike-02/03 (private use range)
  NAT_OA_DRAFT: 131,
  FRAGMENT: 132, // Cisco / strongSwan IKEv1 fragmentation (private use range)
} as const;

/** RFC 2408 3.1 header flags. */
export const Flags = { ENCRYPTION: 1, COMMIT: 2, AUTHENTICATION_ONLY: 4 } as const;
/** Flag bits defined for IKEv1; any other bit set is INVALID_FLAGS. */
export const KNOWN_FLAGS_MASK = 0x07;

/** RFC 2408 3.14.1 (errors 1-30, status 16384), RFC 2407 4.6.3 (24576-24578), RFC 3706 (DPD), Cisco private. */
export const NotifyType = {
  INVALID_PAYLOAD_TYPE: 1,
  DOI_NOT_SUPPORTED: 2,
  SITUATION_NOT_SUPPORTED: 3,
  INVALID_COOKIE: 4,
  INVALID_MAJOR_VERSION: 5,
  INVALID_MINOR_VERSION: 6,
  INVALID_EXCHANGE_TYPE: 7,
  INVALID_FLAGS: 8,
  INVALID_MESSAGE_ID: 9,
  INVALID_PROTOCOL_ID: 10,
  INVALID_SPI: 11,
  INVALID_TRANSFORM_ID: 12,
  ATTRIBUTES_NOT_SUPPORTED: 13,
  NO_PROPOSAL_CHOSEN: 14,
  BAD_PROPOSAL_SYNTAX: 15,
  PAYLOAD_MALFORMED: 16,
  INVALID_KEY_INFORMATION: 17,
  INVALID_ID_INFORMATION: 18,
  INVALID_CERT_ENCODING: 19,
  INVALID_CERTIFICATE: 20,
  CERT_TYPE_UNSUPPORTED: 21,
  INVALID_CERT_AUTHORITY: 22,
  INVALID_HASH_INFORMATION: 23,
  AUTHENTICATION_FAILED: 24,
  INVALID_SIGNATURE: 25,
  ADDRESS_NOTIFICATION: 26,
  NOTIFY_SA_LIFETIME: 27,
  CERTIFICATE_UNAVAILABLE: 28,
  UNSUPPORTED_EXCHANGE_TYPE: 29,
  UNEQUAL_PAYLOAD_LENGTHS: 30,
  CONNECTED: 16384,
  RESPONDER_LIFETIME: 24576,
  REPLAY_STATUS: 24577,
  INITIAL_CONTACT: 24578,
  CISCO_HELLO: 30000,
  R_U_THERE: 36136, // RFC 3706
  R_U_THERE_ACK: 36137,
  UNITY_HEARTBEAT: 40500, // Cisco Unity
  UNITY_LOAD_BALANCE: 40501,
  CISCO_PRESHARED_KEY_HASH: 40503,
} as const;

/** RFC 2408 3.4 / RFC 2407. */
export const DOI = { ISAKMP: 0, IPSEC: 1, GDOI: 2 } as const;
/** RFC 2407 4.2 situation bitmap. */
export const Situation = { SIT_IDENTITY_ONLY: 1, SIT_SECRECY: 2, SIT_INTEGRITY: 4 } as const;
/** RFC 2407 4.4.1 protocol identifiers. */
export const ProtocolId = { ISAKMP: 1, IPSEC_AH: 2, IPSEC_ESP: 3, IPCOMP: 4 } as const;
/** RFC 2407 4.4.2. */
export const IkeTransformId = { KEY_IKE: 1 } as const;

/** RFC 2409 Appendix A phase-1 (Oakley) attribute classes. B/V = may be TLV. */
export const IkeAttr = {
  ENCRYPTION_ALGORITHM: 1,
  HASH_ALGORITHM: 2,
  AUTHENTICATION_METHOD: 3,
  GROUP_DESCRIPTION: 4,
  GROUP_TYPE: 5,
  GROUP_PRIME: 6,
  GROUP_GENERATOR_ONE: 7,
  GROUP_GENERATOR_TWO: 8,
  GROUP_CURVE_A: 9,
  GROUP_CURVE_B: 10,
  LIFE_TYPE: 11,
  LIFE_DURATION: 12,
  PRF: 13,
  KEY_LENGTH: 14,
  FIELD_SIZE: 15,
  GROUP_ORDER: 16,
} as const;

/** RFC 2409 Appendix A + RFC 3602 (AES) + RFC 4312 (Camellia). */
export const IkeEncr = {
  DES_CBC: 1,
  IDEA_CBC: 2,
  BLOWFISH_CBC: 3,
  RC5_R16_B64_CBC: 4,
  '3DES_CBC': 5,
  CAST_CBC: 6,
  AES_CBC: 7,
  CAMELLIA_CBC: 8,
} as const;

/** RFC 2409 Appendix A + RFC 4868. */
export const IkeHash = { MD5: 1, SHA: 2, TIGER: 3, SHA2_256: 4, SHA2_384: 5, SHA2_512: 6 } as const;

/** RFC 2409 Appendix A + RFC 4754 (ECDSA) + XAUTH / hybrid drafts (private-use values). */
export const AuthMethod = {
  PRE_SHARED_KEY: 1,
  DSS: 2,
  RSA_SIG: 3,
  RSA_ENC: 4,
  RSA_ENC_REV: 5,
  ECDSA_256: 9, // ECDSA with SHA-256 on the P-256 curve (RFC 4754)
  ECDSA_384: 10,
  ECDSA_521: 11,
  HYBRID_INIT_RSA: 64221,
  HYBRID_RESP_RSA: 64222,
  HYBRID_INIT_DSS: 64223,
  HYBRID_RESP_DSS: 64224,
  XAUTH_INIT_PSK: 65001,
  XAUTH_RESP_PSK: 65002,
  XAUTH_INIT_DSS: 65003,
  XAUTH_RESP_DSS: 65004,
  XAUTH_INIT_RSA: 65005,
  XAUTH_RESP_RSA: 65006,
  XAUTH_INIT_RSA_ENC: 65007,
  XAUTH_RESP_RSA_ENC: 65008,
  XAUTH_INIT_RSA_ENC_REV: 65009,
  XAUTH_RESP_RSA_ENC_REV: 65010,
} as const;

/** RFC 2409 Appendix A group type. */
export const GroupType = { MODP: 1, ECP: 2, EC2N: 3 } as const;

/** Group Description (phase 1 attr 4, phase 2 attr 3): RFC 2409, RFC 3526, RFC 5903, RFC 5114. */
export const GroupDescription = {
  MODP_768: 1,
  MODP_1024: 2,
  EC2N_155: 3,
  EC2N_185: 4,
  MODP_1536: 5,
  MODP_2048: 14,
  MODP_3072: 15,
  MODP_4096: 16,
  MODP_6144: 17,
  MODP_8192: 18,
  ECP_256: 19,
  ECP_384: 20,
  ECP_521: 21,
  MODP_1024_S160: 22,
  MODP_2048_S224: 23,
  MODP_2048_S256: 24,
  ECP_192: 25,
  ECP_224: 26,
  BRAINPOOL_P224R1: 27,
  BRAINPOOL_P256R1: 28,
  BRAINPOOL_P384R1: 29,
  BRAINPOOL_P512R1: 30,
} as const;

export const LifeType = { SECONDS: 1, KILOBYTES: 2 } as const;

/** RFC 2407 4.4.3 + later IANA assignments (IPSEC ESP Transform Identifiers). */
export const EspTransformId = {
  ESP_DES_IV64: 1,
  ESP_DES: 2,
  ESP_3DES: 3,
  ESP_RC5: 4,
  ESP_IDEA: 5,
  ESP_CAST: 6,
  ESP_BLOWFISH: 7,
  ESP_3IDEA: 8,
  ESP_DES_IV32: 9,
  ESP_RC4: 10,
  ESP_NULL: 11,
  ESP_AES_CBC: 12,
  ESP_AES_CTR: 13,
  ESP_AES_CCM_8: 14,
  ESP_AES_CCM_12: 15,
  ESP_AES_CCM_16: 16,
  ESP_AES_GCM_8: 18,
  ESP_AES_GCM_12: 19,
  ESP_AES_GCM_16: 20,
  ESP_SEED_CBC: 21,
  ESP_CAMELLIA: 22,
  ESP_NULL_AUTH_AES_GMAC: 23,
  // Not in the IKEv1 registry (24-248 unassigned there): the IKEv2 ENCR value, which strongSwan and
  // Libreswan also send in IKEv1 Quick Mode.
  ESP_CHACHA20_POLY1305: 28,
} as const;

/** RFC 2407 4.4.3 + RFC 4868 / 3566 / 4543 (IPSEC AH Transform Identifiers). */
export const AhTransformId = {
  AH_MD5: 2,
  AH_SHA: 3,
  AH_DES: 4,
  AH_SHA2_256: 5,
  AH_SHA2_384: 6,
  AH_SHA2_512: 7,
  AH_RIPEMD: 8,
  AH_AES_XCBC_MAC: 9,
  AH_RSA: 10,
  AH_AES_128_GMAC: 11,
  AH_AES_192_GMAC: 12,
  AH_AES_256_GMAC: 13,
} as const;

/** RFC 2407 4.4.5. */
export const IpcompTransformId = { IPCOMP_OUI: 1, IPCOMP_DEFLATE: 2, IPCOMP_LZS: 3, IPCOMP_LZJH: 4 } as const;

/** RFC 2407 4.5 phase-2 SA attributes (+ RFC 3168 ECN, RFC 4304 ESN). */
export const IpsecAttr = {
  SA_LIFE_TYPE: 1,
  SA_LIFE_DURATION: 2,
  GROUP_DESCRIPTION: 3,
  ENCAPSULATION_MODE: 4,
  AUTHENTICATION_ALGORITHM: 5,
  KEY_LENGTH: 6,
  KEY_ROUNDS: 7,
  COMPRESS_DICTIONARY_SIZE: 8,
  COMPRESS_PRIVATE_ALGORITHM: 9,
  ECN_TUNNEL: 10,
  EXTENDED_SEQUENCE_NUMBER: 11,
} as const;

/** RFC 2407 4.5 + RFC 3947 (3, 4) + NAT-T drafts (61443, 61444). */
export const EncapsulationMode = {
  TUNNEL: 1,
  TRANSPORT: 2,
  UDP_TUNNEL: 3,
  UDP_TRANSPORT: 4,
  UDP_TUNNEL_DRAFT: 61443,
  UDP_TRANSPORT_DRAFT: 61444,
} as const;

/** RFC 2407 4.5 Authentication Algorithm + RFC 4868 / 3566 / 4543. */
export const AuthAlgorithm = {
  HMAC_MD5: 1,
  HMAC_SHA: 2,
  DES_MAC: 3,
  KPDK: 4,
  HMAC_SHA2_256: 5,
  HMAC_SHA2_384: 6,
  HMAC_SHA2_512: 7,
  HMAC_RIPEMD: 8,
  AES_XCBC_MAC: 9,
  SIG_RSA: 10,
  AES_128_GMAC: 11,
  AES_192_GMAC: 12,
  AES_256_GMAC: 13,
} as const;

/** RFC 2407 4.6.2.1 + RFC 3554 (ID_LIST). */
export const IdType = {
  IPV4_ADDR: 1,
  FQDN: 2,
  USER_FQDN: 3,
  IPV4_ADDR_SUBNET: 4,
  IPV6_ADDR: 5,
  IPV6_ADDR_SUBNET: 6,
  IPV4_ADDR_RANGE: 7,
  IPV6_ADDR_RANGE: 8,
  DER_ASN1_DN: 9,
  DER_ASN1_GN: 10,
  KEY_ID: 11,
  LIST: 12,
} as const;

/** RFC 2408 3.9 certificate encoding. */
export const CertEncoding = {
  NONE: 0,
  PKCS7_WRAPPED_X509: 1,
  PGP: 2,
  DNS_SIGNED_KEY: 3,
  X509_SIGNATURE: 4,
  X509_KEY_EXCHANGE: 5,
  KERBEROS_TOKENS: 6,
  CRL: 7,
  ARL: 8,
  SPKI: 9,
  X509_ATTRIBUTE: 10,
} as const;

/** draft-dukes-ike-mode-cfg-02 3.2: attribute payload type. */
export const ModeCfgType = { CFG_REQUEST: 1, CFG_REPLY: 2, CFG_SET: 3, CFG_ACK: 4 } as const;

/** Mode-config attributes (draft-dukes-ike-mode-cfg-02 3.3), XAUTH (draft-beaulieu-ike-xauth-02 6.2),
 * Cisco Unity (private use), Microsoft. */
export const ModeCfgAttr = {
  INTERNAL_IP4_ADDRESS: 1,
  INTERNAL_IP4_NETMASK: 2,
  INTERNAL_IP4_DNS: 3,
  INTERNAL_IP4_NBNS: 4,
  INTERNAL_ADDRESS_EXPIRY: 5,
  INTERNAL_IP4_DHCP: 6,
  APPLICATION_VERSION: 7,
  INTERNAL_IP6_ADDRESS: 8,
  INTERNAL_IP6_NETMASK: 9,
  INTERNAL_IP6_DNS: 10,
  INTERNAL_IP6_NBNS: 11,
  INTERNAL_IP6_DHCP: 12,
  INTERNAL_IP4_SUBNET: 13,
  SUPPORTED_ATTRIBUTES: 14,
  INTERNAL_IP6_SUBNET: 15,
  XAUTH_TYPE: 16520,
  XAUTH_USER_NAME: 16521,
  XAUTH_USER_PASSWORD: 16522,
  XAUTH_PASSCODE: 16523,
  XAUTH_MESSAGE: 16524,
  XAUTH_CHALLENGE: 16525,
  XAUTH_DOMAIN: 16526,
  XAUTH_STATUS: 16527,
  XAUTH_NEXT_PIN: 16528,
  XAUTH_ANSWER: 16529,
  INTERNAL_IP4_SERVER: 23456, // Microsoft
  INTERNAL_IP6_SERVER: 23457,
  UNITY_BANNER: 28672,
  UNITY_SAVE_PASSWD: 28673,
  UNITY_DEF_DOMAIN: 28674,
  UNITY_SPLITDNS_NAME: 28675,
  UNITY_SPLIT_INCLUDE: 28676,
  UNITY_NATT_PORT: 28677,
  UNITY_LOCAL_LAN: 28678, // a.k.a. split exclude
  UNITY_PFS: 28679,
  UNITY_FW_TYPE: 28680,
  UNITY_BACKUP_SERVERS: 28681,
  UNITY_DDNS_HOSTNAME: 28682,
} as const;

/** draft-beaulieu-ike-xauth-02 XAUTH_TYPE values. */
export const XauthType = { GENERIC: 0, RADIUS_CHAP: 1, OTP: 2, S_KEY: 3 } as const;
/** XAUTH_STATUS values. */
export const XauthStatus = { FAIL: 0, OK: 1 } as const;

/** Fragment payload flags (Cisco / strongSwan IKEv1 fragmentation). */
export const FragmentFlags = { LAST_FRAGMENT: 1 } as const;
