package thumbgen

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
)

// Waveform colours: a light background and a dark bar per column.
var (
	waveformBackground = color.Gray{Y: 0xf0}
	waveformBar        = color.Gray{Y: 0x40}
)

// Waveform draws peaks (values in [0, 1], one per column of audio, as
// ffmpeg.Runner.Waveform returns them) as a w×h grey image: each column is a
// bar centred on the middle line, as tall as the largest peak of its share
// of peaks (with fewer peaks than columns, a peak spreads over several), at
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
	n := len(peaks)
	for x := range w {
		lo := x * n / w
		hi := max((x+1)*n/w, lo+1)
		v := float32(0)
		for _, p := range peaks[lo:hi] {
			v = max(v, p)
		}
		v = min(v, 1)
		bar := max(int(v*float32(h)+0.5), 1)
		top := (h - bar) / 2
		for y := top; y < top+bar; y++ {
			m.Pix[y*m.Stride+x] = waveformBar.Y
		}
	}
	return m
}

// GenerateWaveform is the thumbnail of audio whose peaks are given: the
// waveform drawn at exactly the requested size (it has no shape of its own
// to keep, so crop and scale give the same image), as PNG. A request over
// lim.MaxPixels is ErrTooLarge; Animated is ignored. Deterministic.
func GenerateWaveform(peaks []float32, req Request, lim Limits) (Result, error) {
	if err := req.Validate(); err != nil {
		return Result{}, err
	}
	if lim = lim.WithDefaults(); int64(req.Width)*int64(req.Height) > lim.MaxPixels {
		return Result{}, fmt.Errorf("%w: waveform of %dx%d", ErrTooLarge, req.Width, req.Height)
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: pngCompression}
	if err := enc.Encode(&b, Waveform(peaks, req.Width, req.Height)); err != nil {
		return Result{}, fmt.Errorf("thumbgen: encode png: %w", err)
	}
	return Result{Data: b.Bytes(), ContentType: contentTypePNG, Width: req.Width, Height: req.Height}, nil
}
