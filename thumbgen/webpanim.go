package thumbgen

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/draw"

	"golang.org/x/image/webp"
)

// webpLayout is the chunk structure of an animated WebP (a VP8X header with
// the animation flag, ANIM, then ANMF frames), found without decoding any
// pixels, so that frames can be decoded one at a time: x/image/webp decodes
// only still images, so each frame is handed to it as a WebP of its own.
type webpLayout struct {
	canvasW, canvasH int
	loopCount        int // as gif.GIF.LoopCount: 0 forever, -1 once
	frames           []webpFrame
	frameCount       int // every ANMF chunk, recorded or not
}

type webpFrame struct {
	rect     image.Rectangle // on the canvas
	duration int             // milliseconds
	blend    bool            // alpha-blend onto the canvas; otherwise overwrite
	dispose  bool            // clear rect to transparent after showing the frame
	alph     []byte          // the ALPH chunk with its header and padding, or nil
	image    []byte          // the VP8 or VP8L chunk with its header and padding
}

// isAnimatedWebP reports whether src has a VP8X header with the animation flag.
func isAnimatedWebP(src []byte) bool {
	// RIFF size WEBP "VP8X" chunk-size flags(1) ...
	return len(src) >= 21 && string(src[12:16]) == "VP8X" && src[20]&0x02 != 0
}

// webpChunk reads the chunk at p of b: its FourCC, its payload and the
// offset after it (padded to even). A chunk running off the end is an error.
func webpChunk(b []byte, p int) (fourCC string, payload []byte, next int, err error) {
	if p+8 > len(b) {
		return "", nil, 0, fmt.Errorf("%w: webp: truncated chunk header at %d", ErrCorrupt, p)
	}
	n := int64(binary.LittleEndian.Uint32(b[p+4:]))
	if n > int64(len(b)-p-8) {
		return "", nil, 0, fmt.Errorf("%w: webp: %q chunk of %d bytes at %d is truncated", ErrCorrupt, b[p:p+4], n, p)
	}
	end := p + 8 + int(n)
	next = end + int(n&1)
	if next > len(b) {
		next = len(b) // a missing pad byte at the very end is tolerated
	}
	return string(b[p : p+4]), b[p+8 : end : end], next, nil
}

// u24 reads a 24-bit little-endian integer.
func u24(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 }

// scanWebP walks the chunks of an animated WebP and records up to maxFrames
// frames; it counts them all. A truncated chunk, a frame outside the canvas
// or a frame without an image is an error.
func scanWebP(src []byte, maxFrames int) (webpLayout, error) {
	l := webpLayout{}
	if len(src) < 12 {
		return l, fmt.Errorf("%w: webp: short header", ErrCorrupt)
	}
	riff := int64(binary.LittleEndian.Uint32(src[4:]))
	body := src
	if riff+8 < int64(len(src)) {
		body = src[:riff+8]
	}
	fourCC, vp8x, p, err := webpChunk(body, 12)
	if err != nil {
		return l, err
	}
	if fourCC != "VP8X" || len(vp8x) < 10 || vp8x[0]&0x02 == 0 {
		return l, fmt.Errorf("%w: webp: not an animated extended WebP", ErrCorrupt)
	}
	l.canvasW, l.canvasH = u24(vp8x[4:])+1, u24(vp8x[7:])+1
	canvas := image.Rect(0, 0, l.canvasW, l.canvasH)
	for p < len(body) {
		var payload []byte
		fourCC, payload, p, err = webpChunk(body, p)
		if err != nil {
			return l, err
		}
		switch fourCC {
		case "ANIM":
			if len(payload) < 6 {
				return l, fmt.Errorf("%w: webp: short ANIM chunk", ErrCorrupt)
			}
			// Background colour (payload[0:4]) is a hint; we dispose to transparent.
			if n := int(binary.LittleEndian.Uint16(payload[4:])); n > 0 {
				l.loopCount = n - 1
				if n == 1 {
					l.loopCount = -1
				}
			}
		case "ANMF":
			l.frameCount++
			if len(l.frames) >= maxFrames {
				continue
			}
			f, err := parseANMF(payload, l.frameCount)
			if err != nil {
				return l, err
			}
			if !f.rect.In(canvas) {
				return l, fmt.Errorf("%w: webp: frame %d at %v is outside the %dx%d canvas", ErrCorrupt, l.frameCount, f.rect, l.canvasW, l.canvasH)
			}
			l.frames = append(l.frames, f)
		}
	}
	if l.frameCount == 0 {
		return l, fmt.Errorf("%w: webp: animation without frames", ErrCorrupt)
	}
	return l, nil
}

// parseANMF reads the header and sub-chunks of the n-th ANMF chunk's payload.
func parseANMF(b []byte, n int) (webpFrame, error) {
	var f webpFrame
	if len(b) < 16 {
		return f, fmt.Errorf("%w: webp: frame %d: short ANMF header", ErrCorrupt, n)
	}
	x, y := 2*u24(b[0:]), 2*u24(b[3:])
	w, h := u24(b[6:])+1, u24(b[9:])+1
	f.rect = image.Rect(x, y, x+w, y+h)
	f.duration = u24(b[12:])
	f.blend = b[15]&0x02 == 0
	f.dispose = b[15]&0x01 != 0
	for p := 16; p < len(b); {
		start := p
		fourCC, _, next, err := webpChunk(b, p)
		if err != nil {
			return f, fmt.Errorf("webp: frame %d: %w", n, err)
		}
		p = next
		switch fourCC {
		case "ALPH":
			if f.image == nil && f.alph == nil {
				f.alph = b[start:p:p]
			}
		case "VP8 ", "VP8L":
			if f.image == nil {
				f.image = b[start:p:p]
			}
		}
	}
	if f.image == nil {
		return f, fmt.Errorf("%w: webp: frame %d has no image", ErrCorrupt, n)
	}
	if string(f.image[:4]) == "VP8L" {
		f.alph = nil // a lossless image carries its own alpha
	}
	// x/image/webp would decode the bitstream at the size it declares,
	// whatever the frame header says: check it before anything is decoded.
	if bw, bh, ok := bitstreamSize(f.image); !ok || bw != w || bh != h {
		return f, fmt.Errorf("%w: webp: frame %d is %dx%d, its image %dx%d", ErrCorrupt, n, w, h, bw, bh)
	}
	return f, nil
}

// bitstreamSize reads the size a VP8 or VP8L chunk (with its header)
// declares.
func bitstreamSize(c []byte) (w, h int, ok bool) {
	p := c[8:]
	switch string(c[:4]) {
	case "VP8 ":
		// frame tag (3), start code 9d 01 2a, 14-bit width and height
		if len(p) < 10 || string(p[3:6]) != "\x9d\x01\x2a" {
			return 0, 0, false
		}
		return int(binary.LittleEndian.Uint16(p[6:]) & 0x3fff), int(binary.LittleEndian.Uint16(p[8:]) & 0x3fff), true
	case "VP8L":
		// signature 0x2f, 14-bit width-1 and height-1
		if len(p) < 5 || p[0] != 0x2f {
			return 0, 0, false
		}
		bits := binary.LittleEndian.Uint32(p[1:])
		return int(bits&0x3fff) + 1, int(bits>>14&0x3fff) + 1, true
	}
	return 0, 0, false
}

// decodeFrame decodes frame i alone by handing x/image/webp a still WebP
// made of the frame's chunks (behind a VP8X header when it has ALPH).
func (l *webpLayout) decodeFrame(i int) (image.Image, error) {
	f := l.frames[i]
	var b bytes.Buffer
	size := 4 + len(f.image)
	if f.alph != nil {
		size += 18 + len(f.alph)
	}
	b.Grow(8 + size)
	b.WriteString("RIFF")
	_ = binary.Write(&b, binary.LittleEndian, uint32(size))
	b.WriteString("WEBP")
	if f.alph != nil {
		w, h := f.rect.Dx()-1, f.rect.Dy()-1
		b.WriteString("VP8X\x0a\x00\x00\x00\x10\x00\x00\x00")
		b.Write([]byte{byte(w), byte(w >> 8), byte(w >> 16), byte(h), byte(h >> 8), byte(h >> 16)})
		b.Write(f.alph)
	}
	b.Write(f.image)
	m, err := webp.Decode(&b)
	if err != nil {
		return nil, decodeError("webp", err)
	}
	if m.Bounds().Dx() != f.rect.Dx() || m.Bounds().Dy() != f.rect.Dy() {
		return nil, fmt.Errorf("%w: webp: frame %d decodes to %v, its header says %dx%d", ErrCorrupt, i+1, m.Bounds(), f.rect.Dx(), f.rect.Dy())
	}
	return m, nil
}

// composeWebP decodes the first n frames of l one at a time onto one
// transparent canvas, blending or overwriting and then disposing as each
// frame says, and calls emit with the canvas as it is shown after each
// frame (see eachFrame for a frame that does not decode).
func composeWebP(l *webpLayout, n int, emit func(canvas *image.RGBA, f webpFrame) error) error {
	canvas := image.NewRGBA(image.Rect(0, 0, l.canvasW, l.canvasH))
	return eachFrame(min(n, len(l.frames)), l.decodeFrame, func(i int, m image.Image) error {
		f := l.frames[i]
		op := draw.Src
		if f.blend {
			op = draw.Over
		}
		draw.Draw(canvas, f.rect, m, m.Bounds().Min, op)
		if err := emit(canvas, f); err != nil {
			return err
		}
		if f.dispose {
			clearRect(canvas, f.rect)
		}
		return nil
	})
}
