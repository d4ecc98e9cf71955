package sqlite

import (
	"errors"
	"path/filepath"
	"syscall"
)

// stRdonly is ST_RDONLY of statfs(2)'s f_flags: a read-only mount.
const stRdonly = 1

// openHint says why SQLite could not open path for writing, where the file
// system can tell ("unable to open database file" does not): a read-only
// file system, a folder without write permission, a full disk.
func openHint(path string) string {
	dir := filepath.Dir(path)
	var st syscall.Statfs_t
	statErr := syscall.Statfs(dir, &st)
	if statErr == nil && st.Flags&stRdonly != 0 {
		return "; " + dir + " is on a read-only file system"
	}
	switch err := syscall.Access(dir, 2 /* W_OK */); {
	case errors.Is(err, syscall.EROFS):
		return "; " + dir + " is on a read-only file system"
	case err != nil:
		return "; " + dir + " is not writable: " + err.Error()
	}
	if statErr == nil && st.Bavail == 0 {
		return "; the disk holding " + dir + " is full"
	}
	return ""
}
