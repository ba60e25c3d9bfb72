/*
 * PEM to DER for SecureSocket, which takes DER: the cloud CA (trust anchor),
 * the client certificate chain and the PKCS#8 client key. Strict base64 by
 * XS's own Uint8Array.fromBase64 (SDK 8.2.x, xs/sources/xsDataView.c, every
 * platform): padding required, unused bits zero, ASCII whitespace skipped;
 * anything else throws SyntaxError.
 */

/** Every block of `label` ("CERTIFICATE", "PRIVATE KEY") in `pem`, as DER. */
export function pemBlocks(pem: string, label: string): ArrayBuffer[] {
  const end = `-----END ${label}-----`;
  return pem.split(`-----BEGIN ${label}-----`).slice(1).map((block) => {
    const stop = block.indexOf(end);
    if (stop < 0) throw new Error(`PEM: unterminated ${label}`);
    try {
      return Uint8Array.fromBase64(block.slice(0, stop), { lastChunkHandling: "strict" }).buffer as ArrayBuffer;
    } catch {
      throw new Error("PEM: bad base64");
    }
  });
}
