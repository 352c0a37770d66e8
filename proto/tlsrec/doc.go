// Package tlsrec follows a TLS connection record by record, both
// directions pushed in pieces of any size: handshake metadata (SNI, ALPN,
// versions, cipher, alerts) without keys, and, with the session's secrets
// from an NSS key log (KeyLog), decryption of TLS 1.2 and 1.3 AEAD
// records, whose plaintext goes to the caller.
//
// It must not know TCP, HTTP or capture files: the caller feeds it bytes,
// and the capture reader fills the KeyLog from a pcapng's Decryption
// Secrets Blocks.
package tlsrec
