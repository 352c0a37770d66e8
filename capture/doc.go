// Package capture turns capture files and live interfaces into TCP
// segments.
//
// Files: pcap and pcapng (several interfaces of different link types in
// one pcapng), gzip-compressed or not, from a file or standard input; the
// TLS key logs a pcapng carries in Decryption Secrets Blocks are handed to
// a KeyLogSink as they are read (secrets.go). Live (Linux): AF_PACKET
// TPACKET_V3 rings through gopacket's pure-Go afpacket, with a kernel BPF
// program that package capture/filter compiles from a documented subset of
// pcap-filter syntax (the same filter is applied to files with its
// Matcher); on loopback the outgoing copy of every packet is dropped in
// the kernel. Both decode Ethernet (with 802.1Q), Linux SLL and SLL2, BSD
// loopback and raw IPv4/IPv6 with gopacket's DecodingLayerParser into
// structs reused for every packet: reading allocates nothing per packet.
//
// TLS plaintext read at one end of a connection (Plaintext) is kept in a
// pcapng as Wireshark exported PDUs (link type 252) beside the packets:
// the Writer writes them, the Reader hands them to a PlaintextSink in file
// order (plaintext.go). Package capture/tlsplain reads it live from the
// proxies' libssl with eBPF uprobes.
//
// It also writes pcapng (writer.go) and drops root after the capture
// socket is open (privdrop_linux.go). It must not know TCP streams, HTTP,
// TLS or WebSocket: it hands over segments, secrets and plaintext, never
// parses them. Package capture/synth writes synthetic captures for
// benchmarks.
package capture
