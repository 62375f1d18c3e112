package index

import (
	"testing"

	"golang.org/x/sys/unix"
)

// Pebble may hold half of the process's file limit open, at least its
// own default and at most 65,536.
func TestMaxOpenFiles(t *testing.T) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
	for _, c := range []struct{ soft, want uint64 }{{4096, 2048}, {1024, 1000}, {1 << 20, 1 << 16}} {
		if c.soft > rl.Max {
			continue
		}
		lower := unix.Rlimit{Cur: c.soft, Max: rl.Max}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lower); err != nil {
			t.Fatal(err)
		}
		if got := maxOpenFiles(); uint64(got) != c.want {
			t.Errorf("file limit %d: %d open files, want %d", c.soft, got, c.want)
		}
	}
}
