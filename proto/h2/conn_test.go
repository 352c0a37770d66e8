package h2

import (
	"bytes"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// rec records what the parser reports, as text, so two runs compare.
type rec struct{ ev []string }

func (r *rec) Settings(d flow.Role, s Settings, _ time.Time) {
	r.ev = append(r.ev, fmt.Sprintf("%d settings connect=%v/%v table=%d", d, s.HasEnableConnectProtocol, s.EnableConnectProtocol, s.HeaderTableSize))
}
func (r *rec) Headers(d flow.Role, id uint32, f []Field, end bool, _ time.Time) {
	var b strings.Builder
	for _, x := range f {
		b.WriteString(x.Name + "=" + x.Value + " ")
	}
	r.ev = append(r.ev, fmt.Sprintf("%d headers %d end=%v %s", d, id, end, b.String()))
}
func (r *rec) Data(d flow.Role, id uint32, p []byte, end bool, _ time.Time) {
	// Data comes in pieces as bytes arrive: merge consecutive pieces.
	// The last event of this direction is found past the other's.
	key := fmt.Sprintf("%d data %d ", d, id)
	last := -1
	for i := len(r.ev) - 1; i >= 0; i-- {
		if r.ev[i][0] == byte('0'+d) {
			last = i
			break
		}
	}
	if last >= 0 && strings.HasPrefix(r.ev[last], key) && !strings.HasSuffix(r.ev[last], "END") {
		r.ev[last] += string(p)
	} else {
		r.ev = append(r.ev, key+string(p))
		last = len(r.ev) - 1
	}
	if end {
		r.ev[last] += "END"
	}
}
func (r *rec) RSTStream(d flow.Role, id, code uint32, _ time.Time) {
	r.ev = append(r.ev, fmt.Sprintf("%d rst %d %d", d, id, code))
}
func (r *rec) GoAway(d flow.Role, last, code uint32, _ time.Time) {
	r.ev = append(r.ev, fmt.Sprintf("%d goaway %d %d", d, last, code))
}
func (r *rec) Stopped(d flow.Role, why string) {
	r.ev = append(r.ev, fmt.Sprintf("%d stopped %s", d, why))
}

type side struct {
	buf bytes.Buffer
	fr  *http2.Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
}

func newSide() *side {
	s := &side{}
	s.fr = http2.NewFramer(&s.buf, nil)
	s.enc = hpack.NewEncoder(&s.hb)
	return s
}

func (s *side) block(kv ...string) []byte {
	s.hb.Reset()
	for i := 0; i < len(kv); i += 2 {
		s.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return append([]byte(nil), s.hb.Bytes()...)
}

// conversation is an RFC 8441 WebSocket over HTTP/2 as x/net/http2's
// Framer writes it: extended CONNECT, 200, DATA both ways (one padded),
// a header block split over CONTINUATION, a refused stream, GOAWAY.
func conversation(t *testing.T) (client, server []byte) {
	c, s := newSide(), newSide()
	c.buf.WriteString(Preface)
	c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	s.fr.WriteSettings(http2.Setting{ID: SettingEnableConnectProtocol, Val: 1}, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 8192})
	s.fr.WriteSettingsAck()
	c.fr.WriteSettingsAck()
	req := c.block(":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":path", "/ws?x=1", ":authority", "example.test",
		"sec-websocket-version", "13", "origin", "https://example.test", "user-agent", strings.Repeat("u", 300))
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: req[:10], EndHeaders: false})
	c.fr.WriteContinuation(1, false, req[10:200])
	c.fr.WriteContinuation(1, true, req[200:])
	s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: s.block(":status", "200", "sec-websocket-protocol", "chat"), EndHeaders: true})
	c.fr.WriteData(1, false, []byte("\x81\x85abcd\x29\x07\x0f\x08\x0e"))
	s.fr.WriteDataPadded(1, false, []byte("\x81\x05hello"), make([]byte, 7))
	c.fr.WritePing(false, [8]byte{1})
	c.fr.WriteWindowUpdate(0, 1000)
	// The same request again (dynamic table entries reused), refused.
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: c.block(":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":path", "/ws?x=1", ":authority", "example.test"),
		EndHeaders: true, Priority: http2.PriorityParam{StreamDep: 1, Weight: 15}})
	s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: s.block(":status", "400"), EndHeaders: true, EndStream: true})
	c.fr.WriteRSTStream(3, http2.ErrCodeCancel)
	c.fr.WriteData(1, true, nil)
	s.fr.WriteGoAway(3, http2.ErrCodeNo, []byte("bye"))
	return c.buf.Bytes(), s.buf.Bytes()
}

var wantEvents = []string{
	"0 settings connect=false/false table=0",
	"1 settings connect=true/true table=8192",
	"0 headers 1 end=false :method=CONNECT :protocol=websocket :scheme=https :path=/ws?x=1 :authority=example.test sec-websocket-version=13 origin=https://example.test user-agent=" + strings.Repeat("u", 300) + " ",
	"1 headers 1 end=false :status=200 sec-websocket-protocol=chat ",
	"0 data 1 \x81\x85abcd\x29\x07\x0f\x08\x0e",
	"1 data 1 \x81\x05hello",
	"0 headers 3 end=false :method=CONNECT :protocol=websocket :scheme=https :path=/ws?x=1 :authority=example.test ",
	"1 headers 3 end=true :status=400 ",
	"0 rst 3 8",
	"0 data 1 END",
	"1 goaway 3 0",
}

// run feeds both directions, each in chunks of the sizes next gives, the
// directions taking turns as on the wire.
func run(client, server []byte, next func() int) []string {
	r := &rec{}
	c := New(r, true)
	for len(client) > 0 || len(server) > 0 {
		if len(client) > 0 {
			n := min(next(), len(client))
			c.Feed(flow.Client, client[:n], time.Time{})
			client = client[n:]
		}
		if len(server) > 0 {
			n := min(next(), len(server))
			c.Feed(flow.Server, server[:n], time.Time{})
			server = server[n:]
		}
	}
	return r.ev
}

func TestConversationAnySplit(t *testing.T) {
	client, server := conversation(t)
	whole := run(client, server, func() int { return 1 << 30 })
	// The directions are fed whole one after the other here, so order
	// events by direction for the comparison with the table.
	if !reflect.DeepEqual(byDir(whole), byDir(wantEvents)) {
		t.Fatalf("whole:\n%s\nwant:\n%s", strings.Join(whole, "\n"), strings.Join(wantEvents, "\n"))
	}
	for _, size := range []int{1, 2, 3, 7, 9, 10, 100} {
		got := run(client, server, func() int { return size })
		if !reflect.DeepEqual(byDir(got), byDir(wantEvents)) {
			t.Fatalf("chunks of %d:\n%s", size, strings.Join(got, "\n"))
		}
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		got := run(client, server, func() int { return 1 + rng.Intn(40) })
		if !reflect.DeepEqual(byDir(got), byDir(wantEvents)) {
			t.Fatalf("random chunks (run %d):\n%s", i, strings.Join(got, "\n"))
		}
	}
}

func byDir(ev []string) [2][]string {
	var out [2][]string
	for _, e := range ev {
		d := int(e[0] - '0')
		out[d] = append(out[d], e)
	}
	return out
}

func TestGapStopsTheDirection(t *testing.T) {
	client, server := conversation(t)
	r := &rec{}
	c := New(r, true)
	c.Feed(flow.Client, client[:100], time.Time{})
	c.Gap(flow.Client, 50)
	c.Feed(flow.Client, client[150:], time.Time{})
	c.Feed(flow.Server, server, time.Time{})
	if !c.Stopped(flow.Client) || c.Stopped(flow.Server) {
		t.Fatal("a gap must stop its direction only")
	}
	var serverEv []string
	for _, e := range r.ev {
		if e[0] == '1' {
			serverEv = append(serverEv, e)
		}
	}
	if !reflect.DeepEqual(serverEv, byDir(wantEvents)[1]) {
		t.Fatalf("server direction after a client gap:\n%s", strings.Join(serverEv, "\n"))
	}
}

func TestNotHTTP2(t *testing.T) {
	r := &rec{}
	c := New(r, true)
	c.Feed(flow.Client, []byte("GET / HTTP/1.1\r\n\r\n"), time.Time{})
	if !c.Stopped(flow.Client) || len(r.ev) != 1 || !strings.Contains(r.ev[0], "preface") {
		t.Fatalf("got %v", r.ev)
	}
}

func TestDataDoesNotAllocate(t *testing.T) {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	fr.WriteData(1, false, bytes.Repeat([]byte{0x82}, 1000))
	frame := buf.Bytes()
	c := New(nopHandler{}, false)
	allocs := testing.AllocsPerRun(1000, func() { c.Feed(flow.Client, frame, time.Time{}) })
	if allocs != 0 {
		t.Fatalf("%v allocations per DATA frame", allocs)
	}
}

type nopHandler struct{}

func (nopHandler) Settings(flow.Role, Settings, time.Time)             {}
func (nopHandler) Headers(flow.Role, uint32, []Field, bool, time.Time) {}
func (nopHandler) Data(flow.Role, uint32, []byte, bool, time.Time)     {}
func (nopHandler) RSTStream(flow.Role, uint32, uint32, time.Time)      {}
func (nopHandler) GoAway(flow.Role, uint32, uint32, time.Time)         {}
func (nopHandler) Stopped(flow.Role, string)                           {}

func BenchmarkDataFrames(b *testing.B) {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	for i := 0; i < 64; i++ {
		fr.WriteData(1, false, bytes.Repeat([]byte{0x82}, 256))
	}
	p := buf.Bytes()
	c := New(nopHandler{}, false)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Feed(flow.Client, p, time.Time{})
	}
}

func FuzzConn(f *testing.F) {
	client, server := conversation(nil)
	f.Add(client, server, uint8(7))
	f.Add([]byte(Preface), []byte{0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1}, uint8(1))
	f.Fuzz(func(t *testing.T, client, server []byte, chunk uint8) {
		n := int(chunk%64) + 1
		r := &rec{}
		c := New(r, len(client) > 0 && client[0] == 'P')
		for len(client) > 0 || len(server) > 0 {
			k := min(n, len(client))
			c.Feed(flow.Client, client[:k], time.Time{})
			client = client[k:]
			k = min(n, len(server))
			c.Feed(flow.Server, server[:k], time.Time{})
			server = server[k:]
		}
		if len(r.ev) > 100000 {
			t.Fatal("unbounded events")
		}
	})
}
