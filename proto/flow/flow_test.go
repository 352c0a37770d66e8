package flow

import "testing"

func TestNames(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{Fwd.String(), "fwd"}, {Rev.String(), "rev"}, {Dir(2).String(), "Dir(2)"},
		{Client.String(), "client"}, {Server.String(), "server"}, {Role(7).String(), "Role(7)"},
		{Fwd.Reverse().String(), "rev"}, {Rev.Reverse().String(), "fwd"},
		{Client.Peer().String(), "server"}, {Server.Peer().String(), "client"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
