/*
 * Typings for the Moddable SDK's "ssl/cert" (modules/crypt/ssl/ssl_cert.js,
 * SDK 8.2.3): the CertificateManager that SecureSocket builds per connection
 * from `secure.certificate` (one DER trust anchor). Not typed by the SDK.
 */
declare module "ssl/cert" {
  export default class CertificateManager {
    /**
     * Adds a DER trust anchor that every later TLS connection of the VM also
     * accepts (a module-level list beside each connection's own certificate;
     * adding the same bytes twice keeps one). No date check here: the chain
     * check still rejects an expired anchor.
     */
    static register(certificate: ArrayBuffer): void;
  }
}
