package thumbgen

import (
	"image"
	"image/color"
)

// Waveform colours: a light background and a dark bar per column.
var (
	waveformBackground = color.Gray{Y: 0xf0}
	waveformBar        = color.Gray{Y: 0x40}
)

// Waveform draws peaks (values in [0, 1], one per column of audio, as
// ffmpeg.Runner.Waveform returns them) as a w×h grey image: each peak is a
// bar centred on the middle line, spread over w/len(peaks) columns, at
// least one pixel tall. Values outside [0, 1] are clamped; no peaks, or a
// non-positive size, give a blank image of at least 1×1.
func Waveform(peaks []float32, w, h int) image.Image {
	w, h = max(w, 1), max(h, 1)
	m := image.NewGray(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = waveformBackground.Y
	}
	if len(peaks) == 0 {
		return m
	}
	for x := range w {
		v := min(max(peaks[x*len(peaks)/w], 0), 1)
		bar := max(int(v*float32(h)+0.5), 1)
		top := (h - bar) / 2
		for y := top; y < top+bar; y++ {
			m.Pix[y*m.Stride+x] = waveformBar.Y
		}
	}
	return m
}
