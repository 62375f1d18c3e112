package testkit

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Tree records every entry under dir by its path relative to dir:
// directories as "dir", files as "file " and their content, symlinks as
// "-> " and their target. It returns nil when dir does not exist.
func Tree(t testing.TB, dir string) map[string]string {
	t.Helper()
	m := make(map[string]string)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		m[rel], err = treeEntry(path, d)
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// treeEntry is how Tree records the entry d at path.
func treeEntry(path string, d fs.DirEntry) (string, error) {
	switch {
	case d.IsDir():
		return "dir", nil
	case d.Type()&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		return "-> " + target, err
	default:
		b, err := os.ReadFile(path)
		return "file " + string(b), err
	}
}

// SameTree marks the test failed unless dir holds exactly what before
// (from Tree) recorded, naming each entry removed, changed or created; a
// nil before means dir must not exist.
func SameTree(t testing.TB, dir string, before map[string]string) {
	t.Helper()
	sameTree(t, dir, before, Tree(t, dir))
}

// sameTree marks the test failed for each difference between before and
// after, two records of dir.
func sameTree(t testing.TB, dir string, before, after map[string]string) {
	t.Helper()
	if (before == nil) != (after == nil) {
		t.Errorf("%s existed before: %v, exists now: %v", dir, before != nil, after != nil)
		return
	}
	for p, v := range before {
		if a, ok := after[p]; !ok {
			t.Errorf("%s: %s was removed", dir, p)
		} else if a != v {
			t.Errorf("%s: %s changed from %.120q to %.120q", dir, p, v, a)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s was created", dir, p)
		}
	}
}

// Stamps records every entry under dir by its path relative to dir (dir
// itself is "."): its mode, size and modification time, a hash of a file's
// bytes and, for the entries under one of the relative paths atimes, its
// access time. It opens files and directories with O_NOATIME, so recording
// changes no access time. Use it with SameStamps to check that something
// wrote nothing, not even a timestamp.
func Stamps(t testing.TB, dir string, atimes ...string) map[string]string {
	t.Helper()
	m := make(map[string]string)
	var walk func(rel string)
	walk = func(rel string) {
		p := filepath.Join(dir, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		v := fmt.Sprintf("%v %d bytes mtime %v", fi.Mode(), fi.Size(), fi.ModTime().UTC())
		for _, a := range atimes {
			if rel == a || strings.HasPrefix(rel, a+string(filepath.Separator)) {
				st := fi.Sys().(*syscall.Stat_t)
				v += fmt.Sprintf(" atime %v", time.Unix(st.Atim.Sec, st.Atim.Nsec).UTC())
			}
		}
		m[rel] = v
		if !fi.IsDir() && !fi.Mode().IsRegular() {
			return
		}
		f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOATIME, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if fi.Mode().IsRegular() {
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				t.Fatal(err)
			}
			m[rel] += fmt.Sprintf(" sha256 %x", h.Sum(nil))
			return
		}
		names, err := f.Readdirnames(-1)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			walk(filepath.Join(rel, n))
		}
	}
	walk(".")
	return m
}

// SameStamps marks the test failed unless dir holds exactly what before
// (from Stamps, with the same atimes) recorded.
func SameStamps(t testing.TB, dir string, before map[string]string, atimes ...string) {
	t.Helper()
	sameTree(t, dir, before, Stamps(t, dir, atimes...))
}

// Backdate sets the access and modification times of dir and everything
// under it to at: on a filesystem mounted relatime (the default), the next
// read of any of them then writes its access time.
func Backdate(t testing.TB, dir string, at time.Time) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, at, at)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FlipByte flips one bit of the byte in the middle of the file at path, as
// a failing disk would damage a stored chunk.
func FlipByte(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
