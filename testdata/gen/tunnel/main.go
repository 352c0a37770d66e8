// Command tunnel is a userspace point-to-point tunnel for the encapsulations
// this machine's kernel lacks (it has VXLAN built in, but no ipip, ip_gre or
// geneve module): it reads packets from a TUN (ipip, gre) or TAP (geneve)
// device and sends them to the peer encapsulated exactly as the kernel
// drivers would put them on the wire, and the reverse.
//
//	ipip    outer IPv4 with protocol 4, then the inner IPv4 packet (Calico's IPIP mode)
//	gre     outer IPv4 with protocol 47, a GRE header (RFC 2784/2890; with -key the K bit
//	        and the key) with protocol type 0x0800, then the inner IPv4 packet
//	geneve  outer IPv4/UDP to port 6081, an 8-byte Geneve header (RFC 8926: version 0,
//	        no options, protocol type 0x6558) with -vni, then the inner Ethernet frame
//
// It runs inside a network namespace made by testdata/gen/node.sh; the
// script names the device, addresses it and brings it up after tunnel has
// created it (it prints "ready").
package main

import (
	"encoding/binary"
	"flag"
	"log"
	"net"
	"os"
	"syscall"
	"unsafe"
)

const (
	iffTUN     = 0x0001
	iffTAP     = 0x0002
	iffNoPI    = 0x1000
	tunSetIFF  = 0x400454ca
	genevePort = 6081
)

func main() {
	mode := flag.String("mode", "ipip", "ipip, gre or geneve")
	dev := flag.String("dev", "tun0", "device to create")
	remote := flag.String("remote", "", "the peer's underlay IPv4 address")
	key := flag.Uint("key", 0, "gre: a key (sets the K bit) when not 0")
	vni := flag.Uint("vni", 0, "geneve: the virtual network identifier (24 bits)")
	flag.Parse()
	peer := net.ParseIP(*remote).To4()
	if peer == nil {
		log.Fatalf("-remote %q is not an IPv4 address", *remote)
	}
	flags := uint16(iffTUN | iffNoPI)
	if *mode == "geneve" {
		flags = iffTAP | iffNoPI
	}
	tun := openTun(*dev, flags)

	var send func([]byte) []byte // inner → what follows the outer IP (or UDP) header
	var recv func([]byte) []byte // the reverse; nil: not ours
	var conn interface {
		write([]byte)
		read([]byte) ([]byte, error)
	}
	switch *mode {
	case "ipip":
		conn = rawConn(4, peer)
		send = func(p []byte) []byte { return p }
		recv = func(p []byte) []byte { return p }
	case "gre":
		conn = rawConn(47, peer)
		hdr := []byte{0, 0, 0x08, 0x00}
		if *key != 0 {
			hdr = binary.BigEndian.AppendUint32([]byte{0x20, 0, 0x08, 0x00}, uint32(*key))
		}
		send = func(p []byte) []byte { return append(append([]byte{}, hdr...), p...) }
		recv = func(p []byte) []byte {
			if len(p) < 4 || binary.BigEndian.Uint16(p[2:]) != 0x0800 {
				return nil
			}
			n := 4
			for _, bit := range []byte{0x80, 0x20, 0x10} { // checksum, key, sequence
				if p[0]&bit != 0 {
					n += 4
				}
			}
			if len(p) < n {
				return nil
			}
			return p[n:]
		}
	case "geneve":
		conn = udpConn(peer)
		hdr := []byte{0, 0, 0x65, 0x58, byte(*vni >> 16), byte(*vni >> 8), byte(*vni), 0}
		send = func(p []byte) []byte { return append(append([]byte{}, hdr...), p...) }
		recv = func(p []byte) []byte {
			if len(p) < 8 || p[0]>>6 != 0 || binary.BigEndian.Uint16(p[2:]) != 0x6558 {
				return nil
			}
			n := 8 + int(p[0]&0x3f)*4
			if len(p) < n {
				return nil
			}
			return p[n:]
		}
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}
	os.Stdout.WriteString("ready\n")

	go func() {
		buf := make([]byte, 65536)
		for {
			p, err := conn.read(buf)
			if err != nil {
				log.Fatal(err)
			}
			if in := recv(p); in != nil {
				if _, err := tun.Write(in); err != nil {
					log.Printf("tun write: %v", err)
				}
			}
		}
	}()
	buf := make([]byte, 65536)
	for {
		n, err := tun.Read(buf)
		if err != nil {
			log.Fatal(err)
		}
		conn.write(send(buf[:n]))
	}
}

func openTun(name string, flags uint16) *os.File {
	fd, err := syscall.Open("/dev/net/tun", syscall.O_RDWR, 0)
	if err != nil {
		log.Fatal(err)
	}
	var req [40]byte
	copy(req[:16], name)
	binary.LittleEndian.PutUint16(req[16:], flags) // host order; amd64 and arm64 are little endian
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), tunSetIFF, uintptr(unsafe.Pointer(&req[0]))); e != 0 {
		log.Fatalf("TUNSETIFF %s: %v", name, e)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun")
}

// raw is an IPv4 raw socket of one protocol: the kernel writes the outer
// header on send; a read returns the whole packet, outer header included.
type raw struct {
	fd   int
	peer syscall.SockaddrInet4
}

func rawConn(proto int, peer net.IP) *raw {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, proto)
	if err != nil {
		log.Fatal(err)
	}
	r := &raw{fd: fd}
	copy(r.peer.Addr[:], peer)
	return r
}

func (r *raw) write(p []byte) {
	if err := syscall.Sendto(r.fd, p, 0, &r.peer); err != nil {
		log.Printf("sendto: %v", err)
	}
}

func (r *raw) read(buf []byte) ([]byte, error) {
	for {
		n, from, err := syscall.Recvfrom(r.fd, buf, 0)
		if err != nil {
			return nil, err
		}
		sa, ok := from.(*syscall.SockaddrInet4)
		if !ok || sa.Addr != r.peer.Addr || n < 20 {
			continue
		}
		ihl := int(buf[0]&0x0f) * 4
		if n < ihl {
			continue
		}
		return buf[ihl:n], nil
	}
}

// udp carries Geneve.
type udp struct {
	c    *net.UDPConn
	peer *net.UDPAddr
}

func udpConn(peer net.IP) *udp {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: genevePort})
	if err != nil {
		log.Fatal(err)
	}
	return &udp{c: c, peer: &net.UDPAddr{IP: peer, Port: genevePort}}
}

func (u *udp) write(p []byte) {
	if _, err := u.c.WriteToUDP(p, u.peer); err != nil {
		log.Printf("udp write: %v", err)
	}
}

func (u *udp) read(buf []byte) ([]byte, error) {
	for {
		n, from, err := u.c.ReadFromUDP(buf)
		if err != nil {
			return nil, err
		}
		if from.IP.Equal(u.peer.IP) {
			return buf[:n], nil
		}
	}
}
