package reassembly

// GopacketOnly makes an Assembler send every segment through gopacket's
// reassembly, for benchmarks that compare it with the fast path.
func GopacketOnly(o *Options) { o.slowOnly = true }
