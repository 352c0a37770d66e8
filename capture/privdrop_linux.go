//go:build linux

package capture

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// DropPrivileges switches the process to the named user (a name or a
// numeric uid), with that user's primary and supplementary groups, after
// the capture socket is open: setgroups, setgid, setuid (Go applies them
// to every thread). "root" is a no-op; any other user with uid 0 is
// refused, as switching to it drops nothing. When the process already runs
// as the user, nothing is done. Afterwards the process cannot regain root;
// open capture sockets keep working.
func DropPrivileges(name string) error {
	if name == "" {
		return errors.New("drop privileges: no user given")
	}
	if name == "root" {
		return nil
	}
	uid, gid, groups, err := lookupUser(name)
	if err != nil {
		return err
	}
	if err := checkDropTarget(name, uid); err != nil {
		return err
	}
	if os.Getuid() == uid && os.Geteuid() == uid && os.Getgid() == gid && os.Getegid() == gid {
		return nil
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("drop privileges to %s: setgroups: %w", name, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("drop privileges to %s: setgid(%d): %w", name, gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("drop privileges to %s: setuid(%d): %w", name, uid, err)
	}
	if os.Getuid() != uid || os.Geteuid() != uid || os.Getgid() != gid || os.Getegid() != gid {
		return fmt.Errorf("drop privileges to %s: still uid %d/%d gid %d/%d", name, os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid())
	}
	return nil
}

// checkDropTarget refuses a target that is root under another name.
func checkDropTarget(name string, uid int) error {
	if uid == 0 && name != "root" {
		return fmt.Errorf("drop privileges: user %q has uid 0: refusing (it would keep root); name an unprivileged user", name)
	}
	return nil
}

func lookupUser(name string) (uid, gid int, groups []int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return 0, 0, nil, fmt.Errorf("drop privileges: no user %q: %w", name, err)
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("drop privileges: user %q: bad uid %q", name, u.Uid)
	}
	gid, err = strconv.Atoi(u.Gid)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("drop privileges: user %q: bad gid %q", name, u.Gid)
	}
	groups = []int{gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.Atoi(s); err == nil && g != gid {
				groups = append(groups, g)
			}
		}
	}
	return uid, gid, groups, nil
}
