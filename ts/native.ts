// Loads the C++ addon once. Every layer that has a native fast path (ts/crypto, ts/esp) asks here,
// so there is one place that decides whether the addon is usable and one warning if it is not.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const require = createRequire(import.meta.url);
// dist/ts/native.js -> <package root>/build/Release/ikev1_native.node
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let loaded: { addon: any; error: Error | null } | undefined;

/** The addon's exports, or null when it cannot be loaded (the reason is in nativeLoadError()). */
export function nativeAddon(): any | null {
  if (loaded === undefined) {
    if (process.env.IKE_NO_NATIVE === '1') {
      loaded = { addon: null, error: new Error('disabled by IKE_NO_NATIVE=1') };
    } else {
      try {
        loaded = { addon: require(path.join(packageRoot, 'build', 'Release', 'ikev1_native.node')), error: null };
      } catch (e) {
        loaded = { addon: null, error: e as Error };
      }
    }
    if (loaded.addon === null && process.env.IKE_NO_NATIVE !== '1') {
      process.stderr.write(
        `ikev1-engine: native addon not loaded (${loaded.error?.message.split('\n')[0]}); ` +
          'using the slower node:crypto implementation\n',
      );
    }
  }
  return loaded.addon;
}

export function nativeLoadError(): Error | null {
  nativeAddon();
  return loaded!.error;
}
