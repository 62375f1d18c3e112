package media

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mxcas/mxcas/index"
)

// Sentinels for a data directory that is not (or no longer) a usable store.
var (
	// ErrNoStore: the directory is missing or holds no mxcas store (no
	// FORMAT), and the caller did not ask to create one.
	ErrNoStore = errors.New("media: no mxcas store")
	// ErrNotEmpty: a store was to be created (or a backup written) in a
	// directory that holds other files.
	ErrNotEmpty = errors.New("media: directory is not empty and not an mxcas store")
	// ErrIndexMissing: the store has a FORMAT but its index is gone (deleted,
	// or a volume that is not mounted). Opening it would silently start an
	// empty index over every chunk, so it is refused.
	ErrIndexMissing = errors.New("media: the store's index is missing")
)

// dirState is what a directory holds, as far as opening a store goes.
type dirState int

const (
	dirMissing dirState = iota // does not exist
	dirFresh                   // empty, or a store whose creation was interrupted
	dirStore                   // has a FORMAT: an existing store
	dirForeign                 // anything else
)

// storeDirState looks at dir without changing it. A directory without
// FORMAT counts as fresh when it is empty or holds only what creating a
// store leaves before FORMAT is written (cas/ without chunk files, tmp/
// with only its lock, index/, a temp file of FORMAT, the ballast file, the
// cache/ of an object store's chunks),
// plus lost+found (a
// freshly formatted volume). Anything else is foreign, and what says
// which entries made it so.
func storeDirState(dir string) (state dirState, what string, err error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return dirMissing, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("media: %w", err)
	}
	if !fi.IsDir() {
		return dirForeign, "a " + fi.Mode().Type().String() + " file, not a directory", nil
	}
	if _, err := os.Lstat(filepath.Join(dir, "FORMAT")); err == nil {
		return dirStore, "", nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, "", fmt.Errorf("media: %w", err)
	}
	var foreign []string
	for _, e := range ents {
		name := e.Name()
		ok := false
		switch {
		case name == "lost+found" || name == "cache":
			ok = e.IsDir()
		case name == "index": // small media live in the index alone
			ok = e.IsDir() && indexEmpty(filepath.Join(dir, name))
		case name == "cas":
			ok = e.IsDir() && !holdsFiles(filepath.Join(dir, name))
		case name == "tmp":
			ok = e.IsDir() && onlyLock(filepath.Join(dir, name))
		case strings.HasPrefix(name, ".FORMAT-") || name == "ballast":
			ok = e.Type().IsRegular() // FORMAT's temp file; the disk-space ballast
		}
		if !ok {
			foreign = append(foreign, name)
		}
	}
	if len(foreign) == 0 {
		return dirFresh, "", nil
	}
	sort.Strings(foreign)
	more := ""
	if len(foreign) > 10 {
		more = fmt.Sprintf(" and %d more", len(foreign)-10)
		foreign = foreign[:10]
	}
	return dirForeign, "no FORMAT file but " + strings.Join(foreign, ", ") + more, nil
}

// holdsFiles reports whether anything but directories is under dir (or dir
// cannot be read, which counts as holding something).
func holdsFiles(dir string) bool {
	found := errors.New("found")
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return found
		}
		return nil
	})
	return err != nil
}

// indexEmpty reports whether the index in dir holds nothing (or nothing
// Pebble can open: a directory that is not yet an index).
func indexEmpty(dir string) bool {
	empty, err := index.Empty(dir)
	return empty || err != nil && !holdsFiles(dir)
}

// onlyLock reports whether dir holds nothing but the chunk store's LOCK.
func onlyLock(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if e.Name() != "LOCK" || !e.Type().IsRegular() {
			return false
		}
	}
	return true
}

// checkStoreDir decides whether Open may go on in dir: an existing store
// always; a missing or fresh directory only when create is set. It changes
// nothing.
func checkStoreDir(dir string, create bool) (isNew bool, err error) {
	state, what, err := storeDirState(dir)
	if err != nil {
		return false, err
	}
	switch {
	case state == dirStore:
		return false, nil
	case state == dirForeign && create:
		return false, fmt.Errorf("%w: %s has %s; refusing to create a store there (check data_dir, or use an empty directory)",
			ErrNotEmpty, dir, what)
	case state == dirForeign:
		return false, fmt.Errorf("%w in %s: it has %s (check data_dir)", ErrNoStore, dir, what)
	case !create && state == dirMissing:
		return false, fmt.Errorf("%w: %s does not exist (check data_dir; only mxcas serve creates a store)", ErrNoStore, dir)
	case !create:
		return false, fmt.Errorf("%w in %s: it has no FORMAT file (check data_dir; only mxcas serve creates a store)", ErrNoStore, dir)
	}
	return true, nil
}
