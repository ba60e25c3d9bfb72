/*
 * PEM to DER for SecureSocket, which takes DER: the cloud CA (trust anchor),
 * the client certificate chain and the PKCS#8 client key. Strict base64.
 */
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function base64Decode(text: string): ArrayBuffer {
  const clean = text.replace(/[\r\n\t ]/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4) throw new Error("PEM: bad base64");
  const body = clean.replace(/=+$/, "");
  const out = new Uint8Array(Math.floor((body.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let o = 0;
  for (let i = 0; i < body.length; i++) {
    value = ((value << 6) | ALPHABET.indexOf(body[i])) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (value >> bits) & 0xff;
    }
  }
  return out.buffer;
}

/** Every block of `label` ("CERTIFICATE", "PRIVATE KEY") in `pem`, as DER. */
export function pemBlocks(pem: string, label: string): ArrayBuffer[] {
  const blocks: ArrayBuffer[] = [];
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  let at = pem.indexOf(begin);
  while (at >= 0) {
    const stop = pem.indexOf(end, at);
    if (stop < 0) throw new Error(`PEM: unterminated ${label}`);
    blocks.push(base64Decode(pem.slice(at + begin.length, stop)));
    at = pem.indexOf(begin, stop);
  }
  return blocks;
}
