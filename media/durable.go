package media

import (
	"os"
	"path/filepath"
)

// writeFileAtomic writes a small file so that after a crash path holds
// either its old content or data, never a mix: a temp file beside it
// (".NAME-123", which cas removes from DATA at its next open), fsync,
// rename, fsync of the directory. The chunk store's own files use its
// Batch; this is for the store's other small files (FORMAT, admin.json).
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return replaceFile(path, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// replaceFile is writeFileAtomic with fill writing the temp file's
// content (the ballast allocates its space rather than writing bytes).
func replaceFile(path string, perm os.FileMode, fill func(*os.File) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	err = tmp.Chmod(perm)
	if err == nil {
		err = fill(tmp)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteDataFile writes DATA/name, mode 0600, as it writes FORMAT: after a
// crash the file holds its old content or data, never a mix. It is for
// small files other local processes read (the admin endpoint's address).
func (s *Store) WriteDataFile(name string, data []byte) error {
	return writeFileAtomic(filepath.Join(s.opts.Dir, name), data, 0o600)
}
