package reassembly

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// KeyLog holds TLS session secrets in the NSS key log format
// (SSLKEYLOGFILE, Go's tls.Config.KeyLogWriter, the TLS key log in a
// pcapng Decryption Secrets Block), indexed by the ClientHello random.
//
// The zero value is not usable; make one with ParseKeyLog or NewKeyLog.
type KeyLog struct {
	m map[[32]byte]*sessionSecrets
}

// sessionSecrets are the secrets of one TLS session, found by its client
// random. TLS 1.2 sessions have master; TLS 1.3 sessions have the four
// traffic secrets (32 or 48 bytes, the suite's hash length).
type sessionSecrets struct {
	master   []byte // CLIENT_RANDOM: the 48-byte TLS 1.2 master secret
	clientHS []byte // CLIENT_HANDSHAKE_TRAFFIC_SECRET
	serverHS []byte // SERVER_HANDSHAKE_TRAFFIC_SECRET
	clientAP []byte // CLIENT_TRAFFIC_SECRET_0
	serverAP []byte // SERVER_TRAFFIC_SECRET_0
}

// NewKeyLog returns an empty key log.
func NewKeyLog() *KeyLog { return &KeyLog{m: make(map[[32]byte]*sessionSecrets)} }

// Len returns the number of sessions (client randoms) the log has secrets for.
func (k *KeyLog) Len() int {
	if k == nil {
		return 0
	}
	return len(k.m)
}

// keyLogLabels are the labels ParseKeyLog keeps. Other labels (EXPORTER_SECRET,
// CLIENT_EARLY_TRAFFIC_SECRET, EARLY_EXPORTER_SECRET, RSA, …) are skipped.
var keyLogLabels = map[string]func(s *sessionSecrets) *[]byte{
	"CLIENT_RANDOM":                   func(s *sessionSecrets) *[]byte { return &s.master },
	"CLIENT_HANDSHAKE_TRAFFIC_SECRET": func(s *sessionSecrets) *[]byte { return &s.clientHS },
	"SERVER_HANDSHAKE_TRAFFIC_SECRET": func(s *sessionSecrets) *[]byte { return &s.serverHS },
	"CLIENT_TRAFFIC_SECRET_0":         func(s *sessionSecrets) *[]byte { return &s.clientAP },
	"SERVER_TRAFFIC_SECRET_0":         func(s *sessionSecrets) *[]byte { return &s.serverAP },
}

// maxKeyLogLine bounds one line of a key log (the longest valid line is
// about 200 bytes).
const maxKeyLogLine = 64 << 10

// ParseKeyLog reads an NSS key log: lines "LABEL <client random hex> <secret
// hex>". Blank lines, lines starting with '#', and lines with a label it does
// not use are skipped. A line with a used label but a wrong field count, bad
// hex, a client random that is not 32 bytes or a secret of the wrong length is
// an error naming its line number. CRLF line ends are accepted.
func ParseKeyLog(r io.Reader) (*KeyLog, error) {
	k := NewKeyLog()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxKeyLogLine)
	n := 0
	for sc.Scan() {
		n++
		if err := k.addLine(sc.Text()); err != nil {
			return nil, fmt.Errorf("key log line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("key log line %d: line longer than %d bytes", n+1, maxKeyLogLine)
		}
		return nil, fmt.Errorf("key log: %w", err)
	}
	return k, nil
}

func (k *KeyLog) addLine(line string) error {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return nil
	}
	f := strings.Fields(line)
	field, ok := keyLogLabels[f[0]]
	if !ok {
		return nil
	}
	if len(f) != 3 {
		return fmt.Errorf("%s: want 3 fields (label, client random, secret), got %d", f[0], len(f))
	}
	cr, err := hex.DecodeString(f[1])
	if err != nil {
		return fmt.Errorf("%s: client random is not hex", f[0])
	}
	if len(cr) != 32 {
		return fmt.Errorf("%s: client random is %d bytes, want 32", f[0], len(cr))
	}
	sec, err := hex.DecodeString(f[2])
	if err != nil {
		return fmt.Errorf("%s: secret is not hex", f[0])
	}
	if f[0] == "CLIENT_RANDOM" {
		if len(sec) != 48 {
			return fmt.Errorf("%s: master secret is %d bytes, want 48", f[0], len(sec))
		}
	} else if len(sec) != 32 && len(sec) != 48 {
		return fmt.Errorf("%s: secret is %d bytes, want 32 or 48", f[0], len(sec))
	}
	var key [32]byte
	copy(key[:], cr)
	s := k.m[key]
	if s == nil {
		s = new(sessionSecrets)
		k.m[key] = s
	}
	*field(s) = sec
	return nil
}

// Add merges other into k (for keys from a pcapng's Decryption Secrets
// Blocks plus a --keylog file). A secret present in both is taken from
// other. other may be nil.
func (k *KeyLog) Add(other *KeyLog) {
	if other == nil {
		return
	}
	for cr, o := range other.m {
		s := k.m[cr]
		if s == nil {
			s = new(sessionSecrets)
			k.m[cr] = s
		}
		for _, f := range keyLogLabels {
			if v := *f(o); v != nil {
				*f(s) = v
			}
		}
	}
}

// lookup returns the secrets for a client random, or nil.
func (k *KeyLog) lookup(cr *[32]byte) *sessionSecrets {
	if k == nil {
		return nil
	}
	return k.m[*cr]
}

// pcapng Decryption Secrets Block (DSB) constants.
const (
	pcapngSHB       = 0x0A0D0D0A
	pcapngDSB       = 0x0000000A
	pcapngByteOrder = 0x1A2B3C4D
	dsbTLSKeyLog    = 0x544c534b // "TLSK"
)

// ErrNotPcapng is returned by KeyLogFromPcapng for input that does not start
// with a pcapng Section Header Block.
var ErrNotPcapng = errors.New("not a pcapng file")

// KeyLogFromPcapng reads every TLS key log carried in Decryption Secrets
// Blocks (secrets type 0x544c534b, as written by editcap --inject-secrets
// tls,FILE) of a pcapng stream, in all its sections, and returns them merged
// (nil when there are none). It walks the block headers only and skips
// packet blocks without reading them into memory.
//
// gopacket's pcapgo.NgReader (v1.7.7) parses DSBs that come before the first
// Interface Description Block but keeps them in an unexported field with no
// accessor, and skips DSBs that come later; so the capture is read a second
// time here, by this function.
func KeyLogFromPcapng(r io.Reader) (*KeyLog, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [12]byte
	var order binary.ByteOrder
	var out *KeyLog
	for first := true; ; first = false {
		if _, err := io.ReadFull(br, hdr[:8]); err != nil {
			if err == io.EOF && !first {
				return out, nil
			}
			if first {
				return nil, ErrNotPcapng
			}
			return out, fmt.Errorf("pcapng: truncated block header: %w", err)
		}
		if binary.LittleEndian.Uint32(hdr[:4]) == pcapngSHB {
			// The byte order is in the SHB body: read it before the length.
			if _, err := io.ReadFull(br, hdr[8:12]); err != nil {
				return out, fmt.Errorf("pcapng: truncated section header: %w", err)
			}
			switch {
			case binary.LittleEndian.Uint32(hdr[8:12]) == pcapngByteOrder:
				order = binary.LittleEndian
			case binary.BigEndian.Uint32(hdr[8:12]) == pcapngByteOrder:
				order = binary.BigEndian
			default:
				return out, errors.New("pcapng: bad byte-order magic")
			}
			n := order.Uint32(hdr[4:8])
			if n < 28 || n%4 != 0 {
				return out, fmt.Errorf("pcapng: bad section header length %d", n)
			}
			if _, err := br.Discard(int(n) - 12); err != nil {
				return out, fmt.Errorf("pcapng: truncated section header: %w", err)
			}
			continue
		}
		if first || order == nil {
			return nil, ErrNotPcapng
		}
		typ, n := order.Uint32(hdr[:4]), order.Uint32(hdr[4:8])
		if n < 12 || n%4 != 0 {
			return out, fmt.Errorf("pcapng: bad block length %d", n)
		}
		body := int(n) - 12 // without type, length and trailing length
		if typ != pcapngDSB {
			if _, err := br.Discard(body + 4); err != nil {
				return out, fmt.Errorf("pcapng: truncated block: %w", err)
			}
			continue
		}
		if body < 8 || body > 64<<20 {
			return out, fmt.Errorf("pcapng: bad decryption secrets block length %d", n)
		}
		buf := make([]byte, body+4)
		if _, err := io.ReadFull(br, buf); err != nil {
			return out, fmt.Errorf("pcapng: truncated decryption secrets block: %w", err)
		}
		styp, slen := order.Uint32(buf[:4]), order.Uint32(buf[4:8])
		if styp != dsbTLSKeyLog {
			continue
		}
		if int(slen) > body-8 {
			return out, fmt.Errorf("pcapng: decryption secrets length %d exceeds its block", slen)
		}
		kl, err := ParseKeyLog(bytes.NewReader(buf[8 : 8+slen]))
		if err != nil {
			return out, fmt.Errorf("pcapng decryption secrets block: %w", err)
		}
		if out == nil {
			out = NewKeyLog()
		}
		out.Add(kl)
	}
}
