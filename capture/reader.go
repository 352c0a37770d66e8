package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Packet is one TCP segment. The Reader reuses it: it is valid until the
// next call to Next.
type Packet struct {
	CI  gopacket.CaptureInfo
	Net gopacket.Flow
	TCP *layers.TCP
	// Cut counts the payload bytes the capture did not keep (a snap length
	// shorter than the packet): the segment's sequence space goes on past
	// the end of TCP.Payload by that much.
	Cut int
	// Tunnel is the overlay the segment arrived in (tunnel.go); Net and TCP
	// are then the inner packet's.
	Tunnel Tunnel
}

// Reader yields the TCP segments of one capture file.
type Reader struct {
	name   string
	closer io.Closer

	pcap *pcapRecords
	ng   *pcapgo.NgReader
	// first is the first layer of a pcap's packets; pcapng gives each
	// packet's link type with the packet (sections may redefine them).
	first gopacket.LayerType
	// unknown counts skipped packets by link type, for the warning.
	unknown map[layers.LinkType]uint64

	dec *decoder
	pkt Packet

	// keys receives the TLS key logs of a pcapng (secrets.go); until it is
	// set they wait in pendingKeys.
	keys        KeyLogSink
	pendingKeys [][]byte

	// Packets counts records read, TCP the ones that carried TCP.
	Packets, TCP uint64
	// Bytes counts captured bytes read.
	Bytes uint64
	// Skipped counts records of link types wsdiag cannot decode.
	Skipped uint64

	// plain receives the TLS plaintext records (SetPlaintext); pt is
	// the one being handed over.
	plain PlaintextSink
	pt    Plaintext
	// Plaintexts counts the plaintext records handed over.
	Plaintexts uint64
}

// A FileError names the capture and what is wrong with it.
type FileError struct {
	Name string
	Err  error
}

func (e *FileError) Error() string { return quoteName(e.Name) + ": " + e.Err.Error() }

// quoteName keeps a message on one line when a file name holds control
// characters (a newline in a name would split it).
func quoteName(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return strconv.Quote(s)
		}
	}
	return s
}
func (e *FileError) Unwrap() error { return e.Err }

// ErrTruncated reports a capture that ends in the middle of a record. The
// packets before it were delivered.
var ErrTruncated = errors.New("capture is truncated (ends in the middle of a packet)")

const (
	magicGzip0 = 0x1f
	magicGzip1 = 0x8b
)

// Open opens a capture file; "-" is standard input. Gzip is recognised by
// its magic, pcap and pcapng by theirs.
func Open(name string) (*Reader, error) {
	return OpenStdin(name, os.Stdin)
}

// OpenStdin is Open with "-" reading from stdin.
func OpenStdin(name string, stdin io.Reader) (*Reader, error) {
	var f io.ReadCloser
	if name == "-" {
		f = io.NopCloser(stdin)
		name = "(stdin)"
	} else {
		file, err := os.Open(name)
		if err != nil {
			return nil, &FileError{name, unwrapPathError(err)}
		}
		if st, err := file.Stat(); err == nil && st.IsDir() {
			file.Close()
			return nil, &FileError{name, errors.New("is a directory")}
		}
		f = file
	}
	r, err := NewReader(name, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// NewReader reads a capture from rd; name is used in errors.
func NewReader(name string, rd io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(rd, 1<<20)
	magic, err := br.Peek(4)
	if len(magic) == 0 {
		return nil, &FileError{name, errors.New("empty file")}
	}
	if len(magic) >= 2 && magic[0] == magicGzip0 && magic[1] == magicGzip1 {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, &FileError{name, fmt.Errorf("gzip: %w", err)}
		}
		br = bufio.NewReaderSize(zr, 1<<20)
		magic, err = br.Peek(4)
		if len(magic) == 0 {
			return nil, &FileError{name, errors.New("empty file (after gzip)")}
		}
		_ = err
	}
	if len(magic) < 4 {
		return nil, &FileError{name, errors.New("not a pcap or pcapng capture (file too short)")}
	}
	_ = err
	r := &Reader{name: name, dec: newDecoder()}
	switch {
	case bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}):
		tap := &dsbTap{r: br, found: r.foundKeyLog}
		ng, err := pcapgo.NewNgReader(tap, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return nil, &FileError{name, fmt.Errorf("pcapng: %s", describe(err))}
		}
		r.ng = ng
	case isPcapMagic(magic):
		// pcapgo checks the file header; the records are read by
		// pcapRecords, straight out of br.
		hdr, _ := br.Peek(24)
		pr, err := pcapgo.NewReader(bytes.NewReader(hdr))
		if err != nil {
			return nil, &FileError{name, fmt.Errorf("pcap: %s", describe(err))}
		}
		fl := firstLayer(pr.LinkType())
		if fl == gopacket.LayerTypeZero {
			return nil, &FileError{name, fmt.Errorf("unsupported link type %d (%s)", int(pr.LinkType()), pr.LinkType())}
		}
		// Some writers exceed the snap length they declare (or declare 0);
		// read what is there, as tcpdump does, up to libpcap's maximum.
		if pr.Snaplen() == 0 || pr.Snaplen() > 262144 {
			pr.SetSnaplen(262144)
		}
		r.pcap = newPcapRecords(br, magic, pr.Snaplen())
		br.Discard(24)
		r.first = fl
	default:
		return nil, &FileError{name, fmt.Errorf("not a pcap or pcapng capture (magic % x)", magic)}
	}
	return r, nil
}

func isPcapMagic(m []byte) bool {
	for _, x := range [][]byte{
		{0xd4, 0xc3, 0xb2, 0xa1}, {0xa1, 0xb2, 0xc3, 0xd4}, // microseconds
		{0x4d, 0x3c, 0xb2, 0xa1}, {0xa1, 0xb2, 0x3c, 0x4d}, // nanoseconds
	} {
		if bytes.Equal(m, x) {
			return true
		}
	}
	return false
}

// describe turns a reader error into words for a one-line message.
func describe(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "file ends inside its header"
	}
	return err.Error()
}

// Name is the file name as given (or "(stdin)").
func (r *Reader) Name() string { return r.name }

// Close closes the underlying file.
func (r *Reader) Close() error {
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// Next returns the next TCP segment. It returns io.EOF at the end of the
// capture, ErrTruncated (wrapped in a FileError) when the file ends inside
// a record, and a FileError for a damaged record; after an error the
// reader is done.
func (r *Reader) Next() (*Packet, error) {
	for {
		var (
			data []byte
			ci   gopacket.CaptureInfo
			err  error
		)
		if r.ng != nil {
			data, ci, err = r.ng.ZeroCopyReadPacketData()
		} else {
			data, ci, err = r.pcap.next()
		}
		if err != nil {
			// pcapgo returns io.EOF both at a clean end and when a record
			// header was read but none of its bytes: the header tells.
			if err == io.EOF && ci.CaptureLength == 0 {
				return nil, io.EOF
			}
			if err == io.EOF {
				return nil, &FileError{r.name, ErrTruncated}
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, &FileError{r.name, ErrTruncated}
			}
			return nil, &FileError{r.name, fmt.Errorf("after %d packets: %v", r.Packets, err)}
		}
		r.Packets++
		r.Bytes += uint64(len(data))
		first := r.first
		if r.ng != nil {
			var lt layers.LinkType
			if len(ci.AncillaryData) > 0 {
				lt, _ = ci.AncillaryData[0].(layers.LinkType)
			}
			if lt == LinkTypeUpperPDU && r.plain != nil && r.plaintext(data, ci) {
				continue
			}
			if first = firstLayer(lt); first == gopacket.LayerTypeZero {
				r.skip(lt)
				continue
			}
		}
		if !r.dec.decode(first, data, &r.pkt) {
			continue
		}
		r.TCP++
		r.pkt.CI = ci
		r.pkt.CI.AncillaryData = nil
		return &r.pkt, nil
	}
}

// SetPlaintext hands the TLS plaintext records of a pcapng (what -w
// writes with --tls-plaintext) to sink as Next meets them, between the
// packets around them. Without a sink they are skipped as a link type
// wsdiag cannot decode.
func (r *Reader) SetPlaintext(sink PlaintextSink) { r.plain = sink }

// plaintext hands one exported PDU to the sink, or reports that it is not
// a plaintext record.
func (r *Reader) plaintext(data []byte, ci gopacket.CaptureInfo) bool {
	r.pt.Time = ci.Timestamp
	if decodeExportedPDU(data, &r.pt) != nil {
		return false
	}
	r.Plaintexts++
	r.plain(&r.pt)
	return true
}

func (r *Reader) skip(lt layers.LinkType) {
	r.Skipped++
	if r.unknown == nil {
		r.unknown = map[layers.LinkType]uint64{}
	}
	r.unknown[lt]++
}

// SkippedLinkTypes describes the link types of skipped packets, e.g.
// "147 (USER0): 12 packets".
func (r *Reader) SkippedLinkTypes() string {
	var parts []string
	for lt, n := range r.unknown {
		parts = append(parts, fmt.Sprintf("%d (%s): %d packets", int(lt), lt, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
