package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// An offline fsck or gc bounds its heap unless GOMEMLIMIT set a limit.
func TestBoundHeap(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	t.Setenv("GOMEMLIMIT", "")
	debug.SetMemoryLimit(math.MaxInt64)
	boundHeap()
	if got := debug.SetMemoryLimit(-1); got != offlineHeapLimit {
		t.Errorf("limit %d, want %d", got, offlineHeapLimit)
	}
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetMemoryLimit(1 << 30) // what the runtime read from it at start
	boundHeap()
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("limit %d with GOMEMLIMIT set, want it kept", got)
	}
}
