// Package capture turns capture files into TCP segments.
//
// It reads pcap and pcapng (several interfaces of different link types in
// one pcapng), gzip-compressed or not, from a file or standard input, and
// decodes Ethernet (with 802.1Q), Linux SLL and SLL2, BSD loopback and raw
// IPv4/IPv6 link layers with gopacket's DecodingLayerParser into structs
// that are reused for every packet: reading allocates nothing per packet.
//
// It knows nothing about HTTP; packets that carry no TCP are skipped.
package capture
