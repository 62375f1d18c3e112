package testkit

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
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
	after := Tree(t, dir)
	if (before == nil) != (after == nil) {
		t.Errorf("%s existed before: %v, exists now: %v", dir, before != nil, after != nil)
		return
	}
	for p, v := range before {
		if a, ok := after[p]; !ok {
			t.Errorf("%s: %s was removed", dir, p)
		} else if a != v {
			t.Errorf("%s: %s changed from %.40q to %.40q", dir, p, v, a)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s was created", dir, p)
		}
	}
}
