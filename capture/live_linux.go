//go:build linux

package capture

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture/filter"
)

// Live captures packets from the kernel through an AF_PACKET TPACKET_V3
// ring (gopacket/afpacket, no cgo).
//
// On one interface the socket is SOCK_RAW and packets keep their link
// header: Ethernet for Ethernet-like and loopback devices (LinkType
// Ethernet); other devices (tun, wireguard, GRE, ...) are opened SOCK_DGRAM
// and their packets start at the IP header (LinkType Raw). On "any" the
// socket is SOCK_DGRAM on all interfaces and packets start at the IP header
// (LinkType Raw; CaptureInfo.InterfaceIndex is the kernel's index of the
// packet's interface).
//
// A raw packet socket sees every loopback packet twice, leaving and
// arriving. The kernel filter drops the leaving copy on loopback devices
// only (SKF_AD_PKTTYPE == PACKET_OUTGOING, with "any" also checking
// SKF_AD_IFINDEX): on real interfaces the outgoing packets are the proxy's
// upstream leg.
//
// Next copies each packet out of the ring into a buffer it reuses, so the
// Packet and Raw stay valid until the next call of Next even when another
// goroutine calls Close meanwhile (the ring is unmapped by Close).
type Live struct {
	name  string
	lt    layers.LinkType
	first gopacket.LayerType
	expr  string

	// life guards tp: Next and Stats hold it shared, Close exclusively.
	life   sync.RWMutex
	tp     *afpacket.TPacket
	closed atomic.Bool

	timeout time.Duration
	// What the kernel filter is built for: the socket's kind and the
	// snap length (SetFilter builds another).
	ks      filter.Socket
	snaplen int

	// Packets that were in the ring before the filter was attached are
	// dropped by timestamp until the first later one.
	attached time.Time
	settled  bool

	dec *decoder
	pkt Packet
	buf []byte
	raw []byte

	received, tcp, bytes atomic.Uint64

	statsMu                    sync.Mutex
	kPackets, kDrops, kFreezes uint64
	lastP, lastD, lastF        uint32
}

const (
	liveBlockSize    = 1 << 20
	liveFrameSize    = 4096
	liveBlockTimeout = 20 * time.Millisecond
	livePollSlice    = 100 * time.Millisecond
	defaultBufferMB  = 32
	maxSnaplen       = 262144
	// arphrd types (linux/if_arp.h) whose packets carry an Ethernet header
	arphrdEther    = 1
	arphrdLoopback = 772
)

// OpenLive starts capturing on iface ("" or "any": all interfaces). It
// needs root or CAP_NET_RAW. The kernel keeps only TCP that matches
// opt.Filter and the watched traffic (ClientPorts, Upstreams).
func OpenLive(iface string, opt LiveOptions) (*Live, error) {
	if opt.Snaplen <= 0 {
		opt.Snaplen = maxSnaplen
	}
	if opt.Snaplen > maxSnaplen {
		return nil, fmt.Errorf("live capture: snaplen %d is more than the maximum %d", opt.Snaplen, maxSnaplen)
	}
	if opt.BufferMB <= 0 {
		opt.BufferMB = defaultBufferMB
	}
	if opt.BufferMB < 2 {
		opt.BufferMB = 2
	}
	if opt.Timeout <= 0 {
		opt.Timeout = time.Second
	}

	user, err := filter.Parse(opt.Filter)
	if err != nil {
		return nil, err
	}
	watchExpr := filter.Watch(opt.ClientPorts, opt.Upstreams)
	watch, err := filter.Parse(watchExpr)
	if err != nil {
		return nil, fmt.Errorf("live capture: watched traffic: %w", err)
	}

	isAny := iface == "" || iface == "any"
	l := &Live{name: iface, timeout: opt.Timeout, dec: newDecoder(), expr: filter.Combine(opt.Filter, watchExpr)}
	var (
		sock = afpacket.SocketRaw
		ks   filter.Socket
	)
	if isAny {
		l.name = "any"
		sock = afpacket.SocketDgram
		l.lt = layers.LinkTypeRaw
		ks.IPOnly, ks.Any = true, true
		ifs, err := net.Interfaces()
		if err != nil {
			return nil, fmt.Errorf("live capture: listing interfaces: %w", err)
		}
		for _, i := range ifs {
			if i.Flags&net.FlagLoopback != 0 {
				ks.Loopbacks = append(ks.Loopbacks, i.Index)
			}
		}
	} else {
		ifc, err := net.InterfaceByName(iface)
		if err != nil {
			return nil, fmt.Errorf("live capture: no interface %q (%s)", iface, interfaceNames())
		}
		switch hw := hardwareType(ifc); hw {
		case arphrdEther, arphrdLoopback:
			l.lt = layers.LinkTypeEthernet
		default:
			sock = afpacket.SocketDgram
			l.lt = layers.LinkTypeRaw
			ks.IPOnly = true
		}
		ks.Loopback = ifc.Flags&net.FlagLoopback != 0
	}
	l.first = firstLayer(l.lt)

	raw, err := user.And(watch).Program(l.lt, ks, opt.Snaplen)
	if err != nil {
		return nil, err
	}
	l.ks, l.snaplen = ks, opt.Snaplen

	bindName := iface
	if isAny {
		bindName = ""
	}
	slice := livePollSlice
	if opt.Timeout < slice {
		slice = opt.Timeout
	}
	if slice < time.Millisecond {
		slice = time.Millisecond
	}
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(bindName),
		sock,
		afpacket.TPacketVersion3,
		afpacket.OptFrameSize(liveFrameSize),
		afpacket.OptBlockSize(liveBlockSize),
		afpacket.OptNumBlocks(opt.BufferMB),
		afpacket.OptBlockTimeout(liveBlockTimeout),
		afpacket.OptPollTimeout(slice),
	)
	if err != nil {
		return nil, liveOpenError(l.name, err)
	}
	if err := tp.SetBPF(raw); err != nil {
		tp.Close()
		return nil, fmt.Errorf("live capture on %s: attaching the filter: %w", l.name, err)
	}
	if opt.FanoutGroup != 0 {
		// The kernel's flow hash is symmetric (__skb_get_hash_symmetric),
		// so a connection's two directions meet in one socket.
		if err := tp.SetFanout(afpacket.FanoutHash, opt.FanoutGroup); err != nil {
			tp.Close()
			return nil, fmt.Errorf("live capture on %s: PACKET_FANOUT: %w", l.name, err)
		}
	}
	if opt.Promisc && !isAny {
		if err := tp.SetPromiscuous(true); err != nil {
			tp.Close()
			return nil, fmt.Errorf("live capture on %s: promiscuous mode: %w", l.name, err)
		}
	}
	l.attached = time.Now()
	_ = tp.InitSocketStats()
	l.tp = tp
	l.buf = make([]byte, opt.Snaplen)
	return l, nil
}

// SetFilter replaces the kernel filter with expr (filter.Parse's
// language; "" keeps all TCP) while the capture runs: what the ring holds
// stays, what comes next must match expr. probe narrows its capture this
// way to each connection it opens, as it opens it.
func (l *Live) SetFilter(expr string) error {
	f, err := filter.Parse(expr)
	if err != nil {
		return err
	}
	raw, err := f.Program(l.lt, l.ks, l.snaplen)
	if err != nil {
		return err
	}
	l.life.RLock()
	defer l.life.RUnlock()
	if l.tp == nil || l.closed.Load() {
		return errors.New("live capture: closed")
	}
	if err := l.tp.SetBPF(raw); err != nil {
		return fmt.Errorf("live capture on %s: attaching the filter: %w", l.name, err)
	}
	l.expr = expr
	return nil
}

// hardwareType is the interface's ARPHRD_* type, from sysfs; without
// sysfs, a 6-byte hardware address means Ethernet.
func hardwareType(ifc *net.Interface) int {
	if b, err := os.ReadFile("/sys/class/net/" + ifc.Name + "/type"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	switch {
	case ifc.Flags&net.FlagLoopback != 0:
		return arphrdLoopback
	case len(ifc.HardwareAddr) == 6:
		return arphrdEther
	}
	return -1
}

// interfaceNames lists the interfaces one can capture on, for an error
// that names one that does not exist.
func interfaceNames() string {
	ifs, err := ListInterfaces()
	if err != nil || len(ifs) == 0 {
		return "the interface list failed too"
	}
	names := make([]string, len(ifs))
	for i, ifc := range ifs {
		names[i] = ifc.Name
	}
	return "the interfaces are " + strings.Join(names, ", ")
}

func liveOpenError(name string, err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("live capture on %s needs root or CAP_NET_RAW: %w", name, err)
	}
	return fmt.Errorf("live capture on %s: %w", name, err)
}

// Name is the interface captured on ("any" for all).
func (l *Live) Name() string { return l.name }

// Filter is the filter expression the kernel applies, besides "tcp" and
// the loopback de-duplication.
func (l *Live) Filter() string { return l.expr }

// LinkType is the link type of the packets Raw returns (Ethernet, or Raw
// IP for "any" and devices without an Ethernet header).
func (l *Live) LinkType() layers.LinkType { return l.lt }

// Raw is the captured bytes of the packet the last Next returned (nil
// after an error); valid until the next call of Next.
func (l *Live) Raw() []byte { return l.raw }

// Next returns the next TCP segment. The Packet is reused: valid until
// the next call. It returns ErrTimeout when no packet came within the
// timeout (call it again), and io.EOF once the capture is closed. Next is
// not safe for concurrent use, but Close and Stats may be called from
// another goroutine: a Next waiting for packets then returns io.EOF
// within 100ms.
func (l *Live) Next() (*Packet, error) {
	l.raw = nil
	l.life.RLock()
	defer l.life.RUnlock()
	if l.tp == nil || l.closed.Load() {
		return nil, io.EOF
	}
	deadline := time.Now().Add(l.timeout)
	for {
		data, ci, err := l.tp.ZeroCopyReadPacketData()
		if l.closed.Load() {
			return nil, io.EOF
		}
		if err != nil {
			if err == afpacket.ErrTimeout {
				if !time.Now().Before(deadline) {
					return nil, ErrTimeout
				}
				continue
			}
			return nil, fmt.Errorf("live capture on %s: %w", l.name, err)
		}
		if !l.settled {
			if ci.Timestamp.Before(l.attached) && time.Since(l.attached) < 2*time.Second {
				continue // queued before the filter was attached
			}
			l.settled = true
		}
		l.received.Add(1)
		if len(data) > len(l.buf) {
			l.buf = make([]byte, len(data))
		}
		n := copy(l.buf, data)
		l.bytes.Add(uint64(n))
		ci.CaptureLength = n
		if ci.Length < n {
			ci.Length = n
		}
		ci.AncillaryData = nil
		if !l.dec.decode(l.first, l.buf[:n], &l.pkt) {
			if !time.Now().Before(deadline) {
				return nil, ErrTimeout
			}
			continue
		}
		l.tcp.Add(1)
		l.raw = l.buf[:n]
		l.pkt.CI = ci
		return &l.pkt, nil
	}
}

// Close stops the capture and releases the ring; Next then returns
// io.EOF. A Next in progress in another goroutine returns first (within
// 100ms). Closing twice is harmless.
func (l *Live) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.life.Lock()
	defer l.life.Unlock()
	if l.tp != nil {
		l.updateKernelStats()
		l.tp.Close()
		l.tp = nil
	}
	return nil
}

// Stats returns the capture's counters; after Close, the last ones.
func (l *Live) Stats() LiveStats {
	l.life.RLock()
	if l.tp != nil {
		l.updateKernelStats()
	}
	l.life.RUnlock()
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	return LiveStats{
		Packets:      l.kPackets,
		KernelDrops:  l.kDrops,
		QueueFreezes: l.kFreezes,
		Received:     l.received.Load(),
		TCP:          l.tcp.Load(),
		Bytes:        l.bytes.Load(),
	}
}

// updateKernelStats folds the kernel's counters (afpacket keeps 32-bit
// running sums) into 64-bit ones. Callers hold life.
func (l *Live) updateKernelStats() {
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	_, v3, err := l.tp.SocketStats()
	if err != nil {
		return
	}
	p, d, f := uint32(v3.Packets()), uint32(v3.Drops()), uint32(v3.QueueFreezes())
	l.kPackets += uint64(p - l.lastP)
	l.kDrops += uint64(d - l.lastD)
	l.kFreezes += uint64(f - l.lastF)
	l.lastP, l.lastD, l.lastF = p, d, f
}

// OpenLiveFanout opens n sockets on iface in one PACKET_FANOUT group with
// flow hashing, one per worker, so that capture scales over cores the way
// reading a file with several workers does: each socket gets whole
// connections. n ≤ 1 opens one socket outside any group.
func OpenLiveFanout(iface string, opt LiveOptions, n int) ([]*Live, error) {
	if n <= 1 {
		l, err := OpenLive(iface, opt)
		if err != nil {
			return nil, err
		}
		return []*Live{l}, nil
	}
	// Group ids are per network namespace; the process id keeps two
	// wsdiag instances apart (and never 0, which means no group here).
	opt.FanoutGroup = uint16(os.Getpid()) | 1
	ls := make([]*Live, 0, n)
	for i := 0; i < n; i++ {
		l, err := OpenLive(iface, opt)
		if err != nil {
			for _, o := range ls {
				o.Close()
			}
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}
