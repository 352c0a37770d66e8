package flow

import "testing"

func TestNames(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{Fwd.String(), "fwd"}, {Rev.String(), "rev"}, {Dir(2).String(), "Dir(?)"},
		{Client.String(), "client"}, {Server.String(), "server"}, {Role(2).String(), "Role(?)"},
		{Fwd.Reverse().String(), "rev"}, {Rev.Reverse().String(), "fwd"},
		{Client.Peer().String(), "server"}, {Server.Peer().String(), "client"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
