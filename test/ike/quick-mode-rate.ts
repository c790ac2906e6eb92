// Quick Mode rate in memory (both sides in this thread, over one existing ISAKMP SA):
//   npx tsc -p tsconfig.json && node dist/test/ike/quick-mode-rate.js [seconds-per-line]
import { nativeCrypto, nodeCrypto, type CryptoProvider } from '../../ts/crypto/index.js';
import { IsakmpSaContext } from '../../ts/ike/index.js';
import { esp, phase1Pair } from './quick-mode-pair.js';

const seconds = Number(process.argv[2] ?? 1.5);
for (const crypto of [nativeCrypto, nodeCrypto].filter((p): p is CryptoProvider => p !== null)) {
  const sas = await phase1Pair(crypto);
  for (const p of ['aes128gcm16', 'aes128gcm16-modp2048', 'aes128gcm16-ecp256']) {
    const child = { name: 'c', proposals: esp(p) };
    const ci = new IsakmpSaContext(crypto, sas.i, { children: [] });
    const cr = new IsakmpSaContext(crypto, sas.r, { children: [child] });
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < seconds * 1000) {
      const { out } = await ci.initiate(child, 0);
      const r2 = await cr.handle(out.send[0]!, 0);
      const r3 = await ci.handle(r2.send[0]!, 0);
      const r4 = await cr.handle(r3.send[0]!, 0);
      if (!r4.events.some((e) => e.type === 'childSa')) throw new Error('Quick Mode did not complete');
      n++;
    }
    const s = (performance.now() - t0) / 1000;
    console.log(`${crypto.name.padEnd(6)} ${p.padEnd(22)} ${(n / s).toFixed(0).padStart(6)} quick modes/s  ${((1000 * s) / n).toFixed(2)} ms each`);
  }
}
