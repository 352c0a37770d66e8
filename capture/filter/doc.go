// Package filter is a small pcap-filter compiler: a documented subset of
// tcpdump's filter language (Syntax), parsed once (parse.go, tree.go) and
// then either lowered to comparisons per address family (lower.go) and
// generated as classic BPF for the kernel of a live capture (codegen.go),
// or evaluated on decoded packets of a capture file (match.go), so that a
// file and a live socket keep the same packets. Watch (watch.go) writes
// the expression for the traffic wsdiag watches.
//
// Supported grammar (the rest of pcap-filter(7) is rejected with an error
// naming the token):
//
//	[src|dst|src or dst|src and dst] host ADDR   IPv4 or IPv6 address, no names
//	[src|dst|...] net CIDR                       10.0.0.0/8, 2001:db8::/32 (or a bare address)
//	[src|dst|...] port N                         0-65535, numbers only
//	[src|dst|...] portrange A-B
//	tcp, ip, ip6                                 also as qualifiers: "tcp port 80",
//	                                             "ip host 10.0.0.1", "ip6 net fd00::/8"
//	and &&  or ||  not !  ( )
//
// As in pcap, "and" and "or" have the same precedence and group left to
// right ("a or b and c" is "(a or b) and c"), "not" binds tightest, and a
// bare value repeats the previous primitive's keywords ("port 80 or 443",
// "host 10.0.0.1 or 10.0.0.2"). A bare address with nothing before it is a
// host. "src ADDR" is "src host ADDR".
//
// Every compiled filter is implicitly ANDed with "tcp": wsdiag reads nothing
// else. Fragmented IPv4 packets are never matched (capture's decoder drops
// them too). For IPv6 the filter follows what the decoder follows: TCP as
// the fixed header's next header, or behind one hop-by-hop options header
// (gopacket's IPv6 layer skips that one); packets with any other extension
// header before TCP are not matched. Ethernet frames must carry IPv4/IPv6
// directly (no 802.1Q tag in the frame data: Linux hands VLAN tags to
// packet sockets out of band).
//
// It knows packet layouts and BPF, not capture files, sockets or TCP
// streams: capture attaches what it compiles and calls the Matcher.
package filter
