//go:build !linux

package capture

import (
	"io"

	"github.com/gopacket/gopacket/layers"
)

// Live is a live capture; it needs Linux (AF_PACKET). Elsewhere OpenLive
// returns ErrLiveUnsupported.
type Live struct{}

// OpenLive returns ErrLiveUnsupported: live capture needs Linux.
func OpenLive(iface string, opt LiveOptions) (*Live, error) {
	return nil, ErrLiveUnsupported
}

// Name is the interface captured on.
func (l *Live) Name() string { return "" }

// Filter is the filter expression the kernel applies.
func (l *Live) Filter() string { return "" }

// LinkType is the link type of the packets Raw returns.
func (l *Live) LinkType() layers.LinkType { return layers.LinkTypeRaw }

// Raw is the captured bytes of the last packet.
func (l *Live) Raw() []byte { return nil }

// Next returns io.EOF.
func (l *Live) Next() (*Packet, error) { return nil, io.EOF }

// SetFilter returns ErrLiveUnsupported.
func (l *Live) SetFilter(expr string) error { return ErrLiveUnsupported }

// Close does nothing.
func (l *Live) Close() error { return nil }

// Stats returns zeros.
func (l *Live) Stats() LiveStats { return LiveStats{} }

// OpenLiveFanout is OpenLive where live capture is not implemented.
func OpenLiveFanout(iface string, opt LiveOptions, n int) ([]*Live, error) {
	return nil, ErrLiveUnsupported
}
