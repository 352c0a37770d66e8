// Package flow names the two directions of a connection, for the parsers
// in proto/ and the reassembly that feeds them. Two meanings, two types,
// so that one is never passed where the other is meant:
//
//   - Dir numbers a direction as the caller first saw it, before anyone
//     knows which end is the client (gopacket's TCPFlowDirection does the
//     same: its "client to server" is the direction of the first segment).
//     http1, tlsrec and wsframe take the caller's Dir and hand it back;
//     tlsrec and wsframe find out which Dir is the client's.
//   - Role says which end sends in a direction: Client (client → server)
//     or Server (server → client). h2 speaks roles; reassembly maps its
//     Dir to the Role once it knows.
//
// It imports nothing of ours, so every package under proto/ may use it and
// still depend on nothing else of ours.
package flow

import "strconv"

// Dir is one of a connection's two directions, as the caller numbers them:
// Fwd is the direction of the first segment it saw, Rev the other. It
// indexes per-direction arrays ([2]T).
type Dir uint8

const (
	Fwd Dir = 0 // the direction of the first segment seen
	Rev Dir = 1 // the other direction
)

// Reverse is the other direction.
func (d Dir) Reverse() Dir { return 1 - d }

func (d Dir) String() string { return name(dirNames[:], int(d), "Dir") }

var dirNames = [...]string{Fwd: "fwd", Rev: "rev"}

// Role is which end sends in a direction.
type Role uint8

const (
	Client Role = 0 // client → server
	Server Role = 1 // server → client
)

// Peer is the other end's role.
func (r Role) Peer() Role { return 1 - r }

func (r Role) String() string { return name(roleNames[:], int(r), "Role") }

var roleNames = [...]string{Client: "client", Server: "server"}

// name is names[i], or "typ(i)" for a value out of range.
func name(names []string, i int, typ string) string {
	if i < len(names) {
		return names[i]
	}
	return typ + "(" + strconv.Itoa(i) + ")"
}
