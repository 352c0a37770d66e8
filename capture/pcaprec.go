package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket"
)

// pcapRecords reads a pcap file's records straight out of the reader's
// buffer: each record's header and bytes are peeked, not copied (pcapgo
// reads them through a second buffer and copies each packet). Its errors
// are pcapgo's, so that a damaged file reads the same.
type pcapRecords struct {
	br      *bufio.Reader
	big     bool   // big-endian file
	factor  uint32 // 1000 for microseconds, 1 for nanoseconds
	snaplen int    // what pcapgo accepts: max(declared or 262144, 262144)
	declSn  uint32 // the snap length pcapgo names in its error
	skip    int    // bytes of the last record, discarded at the next call
	buf     []byte // a record longer than br's buffer
}

func newPcapRecords(br *bufio.Reader, magic []byte, snaplen uint32) *pcapRecords {
	p := &pcapRecords{br: br, big: magic[0] == 0xa1, factor: 1000, declSn: snaplen, snaplen: max(int(snaplen), 262144)}
	if magic[1] == 0x3c || magic[2] == 0x3c { // a1b23c4d either way
		p.factor = 1
	}
	return p
}

func (p *pcapRecords) u32(b []byte) uint32 {
	if p.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// next is pcapgo's ZeroCopyReadPacketData: data is valid until the next
// call; io.EOF with a zero CaptureLength is a clean end.
func (p *pcapRecords) next() (data []byte, ci gopacket.CaptureInfo, err error) {
	if p.skip > 0 {
		p.br.Discard(p.skip)
		p.skip = 0
	}
	h, err := p.br.Peek(16)
	if len(h) < 16 {
		if err == io.EOF && len(h) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, ci, err
	}
	ci.Timestamp = time.Unix(int64(p.u32(h[0:4])), int64(p.u32(h[4:8])*p.factor)).UTC()
	ci.CaptureLength = int(p.u32(h[8:12]))
	ci.Length = int(p.u32(h[12:16]))
	p.br.Discard(16)
	if ci.CaptureLength > p.snaplen {
		return nil, ci, fmt.Errorf("capture length exceeds snap length: %d > %d", ci.CaptureLength, p.declSn)
	}
	if ci.CaptureLength > ci.Length {
		return nil, ci, fmt.Errorf("capture length exceeds original packet length: %d > %d", ci.CaptureLength, ci.Length)
	}
	if ci.CaptureLength > p.br.Size() {
		if cap(p.buf) < ci.CaptureLength {
			p.buf = make([]byte, ci.CaptureLength)
		}
		data = p.buf[:ci.CaptureLength]
		_, err = io.ReadFull(p.br, data)
		return data, ci, err
	}
	data, err = p.br.Peek(ci.CaptureLength)
	p.skip = len(data)
	if len(data) < ci.CaptureLength {
		if err == io.EOF && len(data) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return data, ci, err
	}
	return data, ci, nil
}
