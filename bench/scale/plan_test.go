package main

import (
	"bytes"
	"math"
	"slices"
	"testing"
)

func TestPlanIssue21Mix(t *testing.T) {
	const n = 20000
	items := plan(n, mixes["issue21"], 1)
	if again := plan(n, mixes["issue21"], 1); !slices.Equal(items, again) {
		t.Fatal("two plans of the same seed differ")
	}
	if other := plan(n, mixes["issue21"], 2); slices.Equal(items, other) {
		t.Fatal("plans of seeds 1 and 2 are the same")
	}
	var small, dups int
	for i, it := range items {
		o := items[it.src]
		if int(o.src) != int(it.src) || o.size != it.size || int(it.src) > i {
			t.Fatalf("item %d = %+v: its source %+v is not an earlier original of its size", i, it, o)
		}
		if int(it.src) != i {
			dups++
		}
		if it.size < 1<<10 || it.size >= 512<<10 {
			t.Fatalf("item %d: size %d outside 1-512 KiB", i, it.size)
		}
		if it.size < 16<<10 {
			small++
		}
	}
	// 88.6% of the originals are 1-16 KiB, and so of the copies.
	if got := float64(small) / n; math.Abs(got-0.886) > 0.01 {
		t.Errorf("share under 16 KiB = %.3f, want 0.886", got)
	}
	if got := float64(dups) / n; math.Abs(got-0.05) > 0.01 {
		t.Errorf("share of duplicates = %.3f, want 0.05", got)
	}
	// Issue 21 measured 22.0 GB for 1 M media: about 22 KB a media.
	logical, unique := totals(items)
	if mean := float64(logical) / n; mean < 19e3 || mean > 25e3 {
		t.Errorf("mean size %.0f B, want about 22 KB", mean)
	}
	if unique >= logical {
		t.Errorf("distinct bytes %d not below logical %d", unique, logical)
	}
}

func TestContentDeterministic(t *testing.T) {
	a, b, c := make([]byte, 4096), make([]byte, 4096), make([]byte, 4096)
	content(a, 1, 7)
	content(b, 1, 7)
	content(c, 1, 8)
	if !bytes.Equal(a, b) {
		t.Error("the same original gave different content")
	}
	if bytes.Equal(a, c) {
		t.Error("two originals gave the same content")
	}
}

// -tools-at takes checkpoints only.
func TestParseToolsAt(t *testing.T) {
	cfg := config{count: 1000, checkpoints: 4}
	if at, err := parseToolsAt("250, 750", cfg); err != nil || !slices.Equal(at, []int{250, 750}) {
		t.Errorf("250,750: %v, %v", at, err)
	}
	if at, err := parseToolsAt("", cfg); err != nil || at != nil {
		t.Errorf("empty: %v, %v", at, err)
	}
	for _, bad := range []string{"300", "x", "250,1001"} {
		if _, err := parseToolsAt(bad, cfg); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
