// Package tlsrec follows a TLS connection record by record, both
// directions pushed in pieces of any size: handshake metadata (SNI, ALPN,
// versions, cipher, alerts) without keys, and, with the session's secrets
// from an NSS key log (KeyLog), decryption of TLS 1.2 and 1.3 AEAD
// records, whose plaintext goes to the caller.
//
// conn.go holds Conn and what it reports (Info); record.go the record
// layer; handshake.go the handshake messages and the keys they bring;
// hello.go the hellos and their extensions; tlsdecrypt.go the key
// derivation and record protection; keylog.go the key log. The caller
// numbers the directions (flow.Dir); the ClientHello says which one is
// the client's.
//
// It must not know TCP, HTTP or capture files: the caller feeds it bytes,
// and the capture reader fills the KeyLog from a pcapng's Decryption
// Secrets Blocks.
package tlsrec
