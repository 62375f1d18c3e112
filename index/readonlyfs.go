package index

import (
	"errors"
	"io"
	"io/fs"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"
)

// readOnlyFS is the filesystem of a read-only index. Pebble opens its
// LOCK file with O_TRUNC even read-only, which writes the file's
// modification time at every open; readOnlyFS takes a shared (read) lock
// on the existing file instead, which still keeps a writer out (its lock is
// exclusive) and lets read-only opens share the database.
type readOnlyFS struct{ vfs.FS }

func (f readOnlyFS) Lock(name string) (io.Closer, error) {
	lf, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return f.FS.Lock(name) // a database without one: Pebble's own way
	}
	if err != nil {
		return nil, err
	}
	spec := unix.Flock_t{Type: unix.F_RDLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(lf.Fd(), unix.F_SETLK, &spec); err != nil {
		lf.Close()
		return nil, err
	}
	return lf, nil
}
