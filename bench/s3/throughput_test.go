package main

import "testing"

func TestPlanSizes(t *testing.T) {
	const total = 64 << 20
	sizes := planSizes(total)
	var sum int64
	var small, large int
	for _, n := range sizes {
		if n <= 0 {
			t.Fatalf("size %d", n)
		}
		sum += n
		if n <= 64<<10 {
			small++
		}
		if n > 4<<20 {
			large++
		}
	}
	if sum != total {
		t.Errorf("sizes add up to %d, want %d", sum, total)
	}
	if small == 0 || large == 0 || small < large {
		t.Errorf("%d files up to 64 KiB and %d over 4 MiB: not the mix", small, large)
	}
	if again := planSizes(total); len(again) != len(sizes) || again[0] != sizes[0] {
		t.Error("the plan differs between calls")
	}
}
