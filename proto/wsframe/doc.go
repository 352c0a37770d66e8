// Package wsframe parses RFC 6455 WebSocket frames pushed in pieces of any
// size, one parser per direction of an upgraded connection, and sums each
// direction up (frames, sizes, pings, silences, the close frame, the first
// protocol violation) in a fixed-size Session. Payload is skipped by
// length, never copied or unmasked, except a close frame's code and reason.
//
// It must not know TCP, HTTP or how the upgrade was negotiated: the caller
// says which direction is the client's and whether permessage-deflate was
// accepted.
package wsframe
