package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLogBufferKeepsLinesWholeAndOrdered: lines logged from many
// goroutines reach the output whole, each goroutine's in its order, and
// none is lost once the buffer is closed, though more than logBufferMax
// bytes went through it.
func TestLogBufferKeepsLinesWholeAndOrdered(t *testing.T) {
	var out e2eLog
	logger, lb := bufferedLogger(&out, logFlushDelay, nil)
	const goroutines, lines = 8, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range lines {
				logger.Info("request", "g", g, "i", i, "pad", strings.Repeat("x", 40))
			}
		})
	}
	wg.Wait()
	if err := lb.Close(); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != goroutines*lines {
		t.Fatalf("%d lines, want %d", len(got), goroutines*lines)
	}
	next := make([]int, goroutines)
	for _, line := range got {
		var g, i int
		if _, err := fmt.Sscanf(line[strings.Index(line, " g="):], " g=%d i=%d pad=", &g, &i); err != nil || !strings.HasSuffix(line, strings.Repeat("x", 40)) {
			t.Fatalf("line %q is not whole (%v)", line, err)
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
}

// TestLogBufferWritesWarningsAtOnce: an info line waits in memory, a
// warning is written at once with the info line before it, and Close
// writes a waiting info line.
func TestLogBufferWritesWarningsAtOnce(t *testing.T) {
	var out e2eLog
	logger, lb := bufferedLogger(&out, time.Hour, nil) // only warnings and Close write
	logger.Info("first")
	if out.String() != "" {
		t.Fatalf("info line written at once: %q", out.String())
	}
	logger.With("part", "x").Warn("second")
	if s := out.String(); !strings.Contains(s, "msg=first") || !strings.Contains(s, "msg=second part=x") || strings.Index(s, "msg=first") > strings.Index(s, "msg=second") {
		t.Fatalf("after a warning: %q, want the info line then the warning", s)
	}
	logger.Info("third")
	if strings.Contains(out.String(), "third") {
		t.Fatal("info line after the warning written at once")
	}
	lb.Close()
	if !strings.Contains(out.String(), "msg=third") {
		t.Fatalf("after Close: %q, want the last line", out.String())
	}
	logger.Error("after close")
	if !strings.Contains(out.String(), "after close") {
		t.Fatal("a line after Close is not written")
	}
}

// TestLogBufferFlushesAfterDelay: an info line is written by itself, with
// no warning or Close after it, once its delay has passed, and again for
// a line logged after that write.
func TestLogBufferFlushesAfterDelay(t *testing.T) {
	var out e2eLog
	logger, lb := bufferedLogger(&out, 10*time.Millisecond, nil)
	defer lb.Close()
	for _, msg := range []string{"first", "second"} {
		logger.Info(msg)
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(out.String(), "msg="+msg) {
			if time.Now().After(deadline) {
				t.Fatalf("info line %q not written after its delay: %q", msg, out.String())
			}
			time.Sleep(time.Millisecond)
		}
	}
}
