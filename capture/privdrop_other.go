//go:build !linux

package capture

import "errors"

// DropPrivileges is implemented on Linux only (where live capture is);
// elsewhere it returns an error, except for "root" (a no-op).
func DropPrivileges(name string) error {
	if name == "root" {
		return nil
	}
	return errors.New("drop privileges: only supported on Linux")
}
