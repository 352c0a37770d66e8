package capture

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"time"
)

// LiveOptions configure OpenLive. The zero value captures all TCP on all
// interfaces.
type LiveOptions struct {
	// Snaplen is the most bytes kept of each packet; 0 means 262144
	// (libpcap's maximum, which is also the most allowed). Packets cut
	// inside their TCP header are skipped, so keep it well above
	// 14+60+60 bytes (link, IP and TCP headers with options).
	Snaplen int
	// BufferMB is the size of the kernel ring in MiB; 0 means 32.
	BufferMB int
	// Filter is a filter expression (see filter.Syntax); "" keeps all TCP.
	Filter string
	// ClientPorts and Upstreams narrow the capture to the watched
	// traffic (see filter.Watch): TCP on a client port, or to/from an
	// upstream. With no Upstreams all TCP is watched.
	ClientPorts []uint16
	Upstreams   []netip.AddrPort
	// Promisc puts a single interface into promiscuous mode (ignored for
	// "any", as tcpdump does).
	Promisc bool
	// Timeout is how long Next waits for a packet before it returns
	// ErrTimeout; 0 means one second.
	Timeout time.Duration
	// FanoutGroup, when not 0, joins the socket to the PACKET_FANOUT group
	// of that id with flow hashing: the kernel spreads the connections
	// over the group's sockets, both directions of a connection to the same
	// one. OpenLiveFanout sets it.
	FanoutGroup uint16
}

// LiveStats count a live capture's packets.
type LiveStats struct {
	// Packets is how many packets the kernel filter accepted, including
	// the ones dropped for lack of ring space (PACKET_STATISTICS
	// tp_packets).
	Packets uint64
	// KernelDrops is how many accepted packets the kernel dropped because
	// the ring was full (tp_drops).
	KernelDrops uint64
	// QueueFreezes is how many times the ring filled up (tp_freeze_q_cnt).
	QueueFreezes uint64
	// Received is how many packets Next read from the ring, TCP how many
	// of them it returned as TCP segments, Bytes their captured bytes.
	Received, TCP, Bytes uint64
}

// ErrTimeout is returned by (*Live).Next when no packet arrived within
// LiveOptions.Timeout; the capture goes on.
var ErrTimeout = errors.New("live capture: no packet within the timeout")

// ErrLiveUnsupported is returned by OpenLive where live capture is not
// implemented (everywhere but Linux).
var ErrLiveUnsupported = errors.New("live capture needs Linux (AF_PACKET); on this system capture with tcpdump -w and read the file")

// Interface describes a network interface, as tcpdump -D lists them.
type Interface struct {
	Index       int    // kernel interface index (0 for "any")
	Name        string // name to pass to OpenLive
	Description string // for "any"
	Up          bool
	Running     bool
	Loopback    bool
	Addrs       []netip.Prefix
}

// ListInterfaces lists the interfaces live capture can open, and on Linux
// the pseudo-interface "any" last.
func ListInterfaces() ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]Interface, 0, len(ifs)+1)
	for _, i := range ifs {
		x := Interface{
			Index:    i.Index,
			Name:     i.Name,
			Up:       i.Flags&net.FlagUp != 0,
			Running:  i.Flags&net.FlagRunning != 0,
			Loopback: i.Flags&net.FlagLoopback != 0,
		}
		if addrs, err := i.Addrs(); err == nil {
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok {
					ip, ok := netip.AddrFromSlice(ipn.IP)
					if !ok {
						continue
					}
					ones, bits := ipn.Mask.Size()
					if ip.Is4In6() {
						ip = ip.Unmap()
						if bits == 128 {
							ones -= 96
						}
					}
					x.Addrs = append(x.Addrs, netip.PrefixFrom(ip, ones))
				}
			}
		}
		out = append(out, x)
	}
	if runtime.GOOS == "linux" {
		out = append(out, Interface{Name: "any", Description: "Pseudo-device that captures on all interfaces", Up: true, Running: true})
	}
	return out, nil
}
