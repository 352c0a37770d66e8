package main

import (
	"fmt"
	"syscall"
)

// bindEphemeral binds a socket not yet connected to a port of its own
// (the wildcard address, port 0: the kernel picks) and returns it, so
// that the probe knows its connection's 4-tuple before the SYN leaves.
func bindEphemeral(network string, c syscall.RawConn) (uint16, error) {
	var port uint16
	var serr error
	err := c.Control(func(fd uintptr) {
		var sa syscall.Sockaddr = &syscall.SockaddrInet4{}
		if network == "tcp6" {
			sa = &syscall.SockaddrInet6{}
		}
		if serr = syscall.Bind(int(fd), sa); serr != nil {
			return
		}
		got, err := syscall.Getsockname(int(fd))
		if err != nil {
			serr = err
			return
		}
		switch a := got.(type) {
		case *syscall.SockaddrInet4:
			port = uint16(a.Port)
		case *syscall.SockaddrInet6:
			port = uint16(a.Port)
		default:
			serr = fmt.Errorf("bound to %T", got)
		}
	})
	if err == nil {
		err = serr
	}
	return port, err
}
