package tlsrec

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// KeyLog holds TLS session secrets in the NSS key log format
// (SSLKEYLOGFILE, Go's tls.Config.KeyLogWriter, the TLS key log in a
// pcapng Decryption Secrets Block), indexed by the ClientHello random.
//
// A KeyLog may grow while connections look keys up (AddKeyLog, as a
// capture reader meets the secrets embedded in a pcapng); its methods are
// safe for concurrent use. The zero value is not usable; make one with
// ParseKeyLog or NewKeyLog.
type KeyLog struct {
	mu sync.RWMutex
	m  map[[32]byte]*sessionSecrets // values are never modified once stored
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
	k.mu.RLock()
	defer k.mu.RUnlock()
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
	if other == nil || other == k {
		return
	}
	other.mu.RLock()
	defer other.mu.RUnlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	for cr, o := range other.m {
		// A copy, not an update in place: a connection may hold the old one.
		s := new(sessionSecrets)
		if old := k.m[cr]; old != nil {
			*s = *old
		}
		for _, f := range keyLogLabels {
			if v := *f(o); v != nil {
				*f(s) = v
			}
		}
		k.m[cr] = s
	}
}

// AddKeyLog parses text as an NSS key log (see ParseKeyLog) and merges it
// into k. It lets a capture reader hand over the secrets a pcapng carries
// as it meets them: a Decryption Secrets Block comes before the packets it
// decrypts, and connections look their keys up at the ServerHello.
func (k *KeyLog) AddKeyLog(text []byte) error {
	x, err := ParseKeyLog(bytes.NewReader(text))
	if err != nil {
		return err
	}
	k.Add(x)
	return nil
}

// lookup returns the secrets for a client random, or nil.
func (k *KeyLog) lookup(cr *[32]byte) *sessionSecrets {
	if k == nil {
		return nil
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.m[*cr]
}
