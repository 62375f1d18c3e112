package archive

import (
	"io/fs"
	"slices"
	"strings"
)

// Find returns the directories of fsys that hold archive parts (*.tgz or
// *.tar.gz files), "." for the root, in lexical order: the archives an
// import of a directory reads, one per directory. It walks real
// directories only; symbolic links are not followed.
func Find(fsys fs.FS) ([]string, error) {
	var dirs []string
	seen := make(map[string]bool)
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() || !IsPart(d.Name()) {
			return nil
		}
		dir := "."
		if i := strings.LastIndexByte(p, '/'); i >= 0 {
			dir = p[:i]
		}
		if !seen[dir] {
			seen[dir] = true
			dirs = append(dirs, dir)
		}
		return nil
	})
	slices.Sort(dirs)
	return dirs, err
}

// IsPart reports whether a file name is an archive part's (*.tgz or
// *.tar.gz).
func IsPart(name string) bool {
	return strings.HasSuffix(name, ".tgz") || strings.HasSuffix(name, ".tar.gz")
}
