//go:build !linux

package main

import "syscall"

// bindEphemeral does nothing where probe does not capture (live capture
// needs Linux): the connection gets its port at connect.
func bindEphemeral(network string, c syscall.RawConn) (uint16, error) { return 0, nil }
