package thumbgen

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
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

// TestWaveformMaxOfShare: with more peaks than columns, a column shows the
// largest peak of its share, not whichever one its position lands on.
func TestWaveformMaxOfShare(t *testing.T) {
	peaks := make([]float32, 100)
	peaks[37] = 1 // one loud sample in column 3 of 10
	m := Waveform(peaks, 10, 10)
	for x := range 10 {
		full := m.At(x, 0) == (color.Gray{Y: waveformBar.Y})
		if full != (x == 3) {
			t.Errorf("column %d full height: %v", x, full)
		}
	}
}

func TestGenerateWaveform(t *testing.T) {
	peaks := []float32{0.1, 0.9, 0.4}
	for _, method := range []Method{Crop, Scale} {
		res, err := GenerateWaveform(peaks, Request{Width: 320, Height: 240, Method: method}, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := png.Decode(bytes.NewReader(res.Data))
		if err != nil {
			t.Fatalf("%s: not a PNG: %v", method, err)
		}
		if res.ContentType != "image/png" || res.Width != 320 || res.Height != 240 || m.Bounds() != image.Rect(0, 0, 320, 240) {
			t.Errorf("%s: %s %dx%d (decoded %v), want image/png 320x240", method, res.ContentType, res.Width, res.Height, m.Bounds())
		}
		again, _ := GenerateWaveform(peaks, Request{Width: 320, Height: 240, Method: method}, Limits{})
		if !bytes.Equal(again.Data, res.Data) {
			t.Errorf("%s: not deterministic", method)
		}
	}
	if _, err := GenerateWaveform(peaks, Request{Width: 0, Height: 10}, Limits{}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("0x10: %v, want ErrBadRequest", err)
	}
	if _, err := GenerateWaveform(peaks, Request{Width: 1000, Height: 1000, Method: Scale}, Limits{MaxPixels: 1000}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over MaxPixels: %v, want ErrTooLarge", err)
	}
}
