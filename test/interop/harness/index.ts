// The interop harness: real strongSwan peers in throw-away network namespaces.
// See test/interop/README.md.
export * from './proc.js';
export * from './netns.js';
export * from './strongswan.js';
export * from './charonlog.js';
export * from './vici.js';
export * from './capture.js';
export * from './ikewire.js';
export * from './pcap.js';
export * from './nat.js';
export * from './gateway-config.js';
export * from './libreswan.js';
export * from './logfile.js';
