package thumbgen

import (
	"image"
	"image/color"
	"testing"
)

func TestWaveform(t *testing.T) {
	// Silence, half and full height, and an out-of-range value (clamped).
	m := Waveform([]float32{0, 0.5, 1, 7}, 8, 10)
	if got := m.Bounds(); got != image.Rect(0, 0, 8, 10) {
		t.Fatalf("bounds %v, want 8x10", got)
	}
	height := func(x int) int {
		n := 0
		for y := range 10 {
			if m.At(x, y) == (color.Gray{Y: waveformBar.Y}) {
				n++
			}
		}
		return n
	}
	for x, want := range []int{1, 1, 5, 5, 10, 10, 10, 10} {
		if got := height(x); got != want {
			t.Errorf("column %d: bar %d pixels, want %d", x, got, want)
		}
	}
	// The half-height bar is centred.
	if m.At(2, 0) != (color.Gray{Y: waveformBackground.Y}) || m.At(2, 5) != (color.Gray{Y: waveformBar.Y}) {
		t.Errorf("half bar not centred")
	}
	if b := Waveform(nil, 0, -3).Bounds(); b.Dx() != 1 || b.Dy() != 1 {
		t.Errorf("empty waveform %v, want 1x1", b)
	}
}
