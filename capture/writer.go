package capture

import (
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Writer writes packets to a pcapng file with one interface of one link
// type (like tcpdump -w, which capture.Open reads back).
type Writer struct {
	name   string
	f      *os.File // nil for standard output
	ng     *pcapgo.NgWriter
	closed bool
	// plainID is the interface of the plaintext records (link type 252),
	// added at the first; pdu the buffer they are made in.
	plainAdded bool
	plainID    int
	pdu        []byte
}

// CreateWriter creates (or truncates) path and writes a pcapng section
// header and one interface of link type lt. The file is created with mode
// 0600, as captures hold other people's traffic; an existing regular file
// is set to 0600 too. "-" is standard output.
func CreateWriter(path string, lt layers.LinkType) (*Writer, error) {
	if path == "-" {
		return newWriter("(stdout)", nil, os.Stdout, lt)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, &FileError{path, unwrapPathError(err)}
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, &FileError{path, unwrapPathError(err)}
		}
	}
	w, err := newWriter(path, f, f, lt)
	if err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// NewWriter writes pcapng to w (which the Writer does not close).
func NewWriter(w io.Writer, lt layers.LinkType) (*Writer, error) {
	return newWriter("(writer)", nil, w, lt)
}

func newWriter(name string, f *os.File, w io.Writer, lt layers.LinkType) (*Writer, error) {
	intf := pcapgo.NgInterface{
		Name:                "wsdiag",
		OS:                  runtime.GOOS,
		LinkType:            lt,
		SnapLength:          0,
		TimestampResolution: 9,
	}
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Hardware:    runtime.GOARCH,
		OS:          runtime.GOOS,
		Application: "wsdiag",
	}}
	ng, err := pcapgo.NewNgWriterInterface(w, intf, opts)
	if err != nil {
		return nil, &FileError{name, err}
	}
	return &Writer{name: name, f: f, ng: ng}, nil
}

// WritePacket writes one packet: data is its captured bytes (Live.Raw),
// ci its capture info. All packets go to the file's one interface
// (ci.InterfaceIndex is not kept); a Length shorter than data is taken as
// len(data).
func (w *Writer) WritePacket(ci gopacket.CaptureInfo, data []byte) error {
	if w.closed {
		return &FileError{w.name, os.ErrClosed}
	}
	ci.InterfaceIndex = 0 // (the plaintext's interface is another)
	ci.CaptureLength = len(data)
	if ci.Length < len(data) {
		ci.Length = len(data)
	}
	ci.AncillaryData = nil
	if err := w.ng.WritePacket(ci, data); err != nil {
		return &FileError{w.name, err}
	}
	return nil
}

// WritePlaintext writes a piece of TLS plaintext as a Wireshark exported
// PDU (link type 252, on an interface of its own added at the first), so
// that the file reads back to the same plaintext (Reader.SetPlaintext)
// and Wireshark shows it as HTTP between the connection's addresses.
func (w *Writer) WritePlaintext(p *Plaintext) error {
	if w.closed {
		return &FileError{w.name, os.ErrClosed}
	}
	if !w.plainAdded {
		id, err := w.ng.AddInterface(pcapgo.NgInterface{Name: "tls-plaintext", Description: "TLS plaintext read from the process at one end (wsdiag --tls-plaintext)",
			OS: runtime.GOOS, LinkType: LinkTypeUpperPDU, TimestampResolution: 9})
		if err != nil {
			return &FileError{w.name, err}
		}
		w.plainAdded, w.plainID = true, id
	}
	w.pdu = appendExportedPDU(w.pdu[:0], p)
	ci := gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(w.pdu), Length: len(w.pdu), InterfaceIndex: w.plainID}
	if err := w.ng.WritePacket(ci, w.pdu); err != nil {
		return &FileError{w.name, err}
	}
	return nil
}

// Flush writes out buffered packets.
func (w *Writer) Flush() error {
	if err := w.ng.Flush(); err != nil {
		return &FileError{w.name, err}
	}
	return nil
}

// Close flushes and closes the file (standard output stays open).
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.ng.Flush()
	if w.f != nil {
		if cerr := w.f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return &FileError{w.name, fmt.Errorf("closing: %w", unwrapPathError(err))}
	}
	return nil
}
