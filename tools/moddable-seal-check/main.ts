/*
 * The SealPort on the Moddable SDK's native crypto (hosts/moddable/seal.ts), run
 * on the lin simulator: the RFC 5903 P-256 vectors, GCM test case 4 (seal, open,
 * tampered tag refused) and the docs/protocol.md 14.4 format-3 seal vector made
 * and opened by the core over the native digest and seal. Prints
 * "sealcheck PASS|FAIL <name>" lines, then "sealcheck done". Build and run:
 *   cd tools/moddable-seal-check && mcconfig -d -m -p lin -t build
 *   flock /work/sdk/mcsim.lock xvfb-run -a timeout 25 stdbuf -o0 mcsim -f $MODDABLE/build/bin/lin/mc/debug/moddable-seal-check/mc.so
 */
import { Digest } from "crypt";
import { nativeSeal } from "wcm-host/seal";
import { fromHex, toHex, utf8Encode } from "wcm/bytes";
import { openSealed, sealPublicKey } from "wcm/seal";
import { sealTo } from "wcm/seal-to";
import type { DigestPort } from "wcm/ports";

function sha256(...parts: Uint8Array[]): Uint8Array {
  const d = new Digest("SHA256");
  for (const p of parts) d.write(p.slice().buffer as ArrayBuffer);
  return new Uint8Array(d.close());
}
const digest: DigestPort = {
  sha256: (data) => sha256(data),
  hmacSha256(key, data) {
    const block = new Uint8Array(64); block.set(key.length > 64 ? sha256(key) : key);
    const inner = new Uint8Array(64), outer = new Uint8Array(64);
    for (let i = 0; i < 64; i++) { inner[i] = block[i] ^ 0x36; outer[i] = block[i] ^ 0x5c; }
    return sha256(outer, sha256(inner, data));
  },
};
const check = (name: string, ok: boolean) => trace(`sealcheck ${ok ? "PASS" : "FAIL"} ${name}\n`);
const i = fromHex("c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433");
const r = fromHex("c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53");
const gi = sealPublicKey(nativeSeal, i);
check("RFC 5903 g^i", toHex(gi) === "04dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c37725811805271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3");
const gr = sealPublicKey(nativeSeal, r);
check("RFC 5903 g^ir", toHex(nativeSeal.p256SharedSecret(i, gr)) === "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de");
const k = fromHex("feffe9928665731c6d6a8f9467308308"), iv = fromHex("cafebabefacedbaddecaf888"), aad = fromHex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
const pt = fromHex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
const ct = nativeSeal.aesGcmSeal(k, iv, aad, pt);
check("GCM test case 4 seal", toHex(ct) === "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e0915bc94fbc3221a5db94fae95ae7121a47");
const opened = nativeSeal.aesGcmOpen(k, iv, aad, ct);
check("GCM test case 4 open", opened !== undefined && toHex(opened) === toHex(pt));
const bad = ct.slice(); bad[3] ^= 1;
check("GCM tampered refused", nativeSeal.aesGcmOpen(k, iv, aad, bad) === undefined);
const change = utf8Encode('{"v":1,"seq":1,"action":"set","ssid":"Home","password":"correct horse","priority":10}');
const sealed = sealTo(digest, nativeSeal, gi, "lamp-0001", change, r, "network");
check("format-3 seal vector", toHex(sealed) === "0304d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf6356fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab5af1b5e30f0f34b4051eefff49223158340b3a2c8f375d5c2a0359428d4e1a833e9ff9f28e8222230cf2fa7b5c4c043483a0257848b87b434ad28dd0571a6092aea0f5bc4af769f49af3294f57cacc806804b1234e00be9d0d712c9a6d62fdc095c8816306");
const back = openSealed(digest, nativeSeal, i, gi, "lamp-0001", sealed, "network");
check("format-3 open", back !== undefined && toHex(back) === toHex(change));
check("format-3 rotation purpose refused", openSealed(digest, nativeSeal, i, gi, "lamp-0001", sealed, "rotation") === undefined);
const t0 = Date.now();
for (let n = 0; n < 20; n++) sealPublicKey(nativeSeal, r);
trace(`sealcheck native P-256 key pair: ${((Date.now() - t0) / 20).toFixed(1)} ms each on this host\n`);
trace("sealcheck done\n");
