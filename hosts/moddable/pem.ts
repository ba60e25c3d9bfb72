/*
 * PEM to DER for SecureSocket, which takes DER: the cloud CA (trust anchor),
 * the client certificate chain and the PKCS#8 client key. Strict base64
 * (the core's base64url decoder, wcm/bytes, after the alphabet is mapped).
 */
import { fromBase64Url } from "wcm/bytes";

/** Every block of `label` ("CERTIFICATE", "PRIVATE KEY") in `pem`, as DER. */
export function pemBlocks(pem: string, label: string): ArrayBuffer[] {
  const blocks: ArrayBuffer[] = [];
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  for (let at = pem.indexOf(begin), stop = 0; at >= 0; at = pem.indexOf(begin, stop)) {
    stop = pem.indexOf(end, at);
    if (stop < 0) throw new Error(`PEM: unterminated ${label}`);
    const text = pem.slice(at + begin.length, stop).replace(/[\r\n\t ]/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) throw new Error("PEM: bad base64");
    blocks.push(fromBase64Url(text.replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_")).buffer as ArrayBuffer);
  }
  return blocks;
}
