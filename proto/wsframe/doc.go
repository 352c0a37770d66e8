// Package wsframe parses RFC 6455 WebSocket frames pushed in pieces of any
// size, one parser per direction of an upgraded connection, and sums each
// direction up (frames, sizes, pings, silences, the close frame, the first
// protocol violation) in a fixed-size Session. Payload is skipped by
// length, never copied or unmasked, except a close frame's code and reason.
//
// frame.go holds the frame parser, session.go the Session and its
// Summary, resync.go the hunt for frames in a connection whose handshake
// was not captured (which direction is the client's is then told by the
// masking).
//
// It must not know TCP, HTTP or how the upgrade was negotiated: the caller
// numbers the directions (flow.Dir), says which one is the client's and
// whether permessage-deflate was accepted.
package wsframe
