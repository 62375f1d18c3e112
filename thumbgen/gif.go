package thumbgen

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
)

// gifLayout is the block structure of a GIF, found without decoding any
// pixels, so that frames can be decoded one at a time: image/gif's DecodeAll
// would hold every frame in memory at once.
type gifLayout struct {
	head       []byte     // header, logical screen descriptor and global color table
	frames     []gifFrame // the first frames, as many as asked for
	frameCount int        // frames seen, at most len(frames)+1
	loopCount  int        // as gif.GIF.LoopCount: 0 forever, -1 once
}

type gifFrame struct {
	gce      []byte // the graphic control extension before the image, or nil
	image    []byte // image descriptor, local color table and image data
	delay    int    // hundredths of a second
	disposal byte   // gif.DisposalNone, DisposalBackground or DisposalPrevious
}

// scanGIF walks the blocks of src and records up to maxFrames frames. It
// stops quietly at the first malformed or truncated block: what was seen
// before it stays usable, as browsers do.
func scanGIF(src []byte, maxFrames int) (gifLayout, error) {
	l := gifLayout{loopCount: -1}
	if len(src) < 13 {
		return l, fmt.Errorf("%w: gif: short header", ErrCorrupt)
	}
	p := 13
	if src[10]&0x80 != 0 {
		p += 3 << (uint(src[10]&7) + 1)
	}
	if p > len(src) {
		return l, fmt.Errorf("%w: gif: short color table", ErrCorrupt)
	}
	l.head = src[:p:p]
	// subBlocks returns the offset after the data sub-blocks starting at q,
	// or -1 when they run off the end.
	subBlocks := func(q int) int {
		for q < len(src) {
			n := int(src[q])
			q++
			if n == 0 {
				return q
			}
			q += n
		}
		return -1
	}
	var gce []byte
	for p < len(src) && l.frameCount <= maxFrames {
		switch src[p] {
		case 0x21: // extension
			if p+2 > len(src) {
				return l, nil
			}
			label := src[p+1]
			end := subBlocks(p + 2)
			if end < 0 {
				return l, nil
			}
			block := src[p:end:end]
			switch {
			case label == 0xf9 && len(block) >= 8 && block[2] == 4:
				gce = block
			case label == 0xff && len(block) >= 19 && string(block[3:14]) == "NETSCAPE2.0" && block[14] == 3 && block[15] == 1:
				l.loopCount = int(block[16]) | int(block[17])<<8
			}
			p = end
		case 0x2c: // image descriptor
			q := p + 10
			if q > len(src) {
				return l, nil
			}
			if src[p+9]&0x80 != 0 {
				q += 3 << (uint(src[p+9]&7) + 1)
			}
			q++ // LZW minimum code size
			if q > len(src) {
				return l, nil
			}
			end := subBlocks(q)
			if end < 0 {
				return l, nil
			}
			l.frameCount++
			if len(l.frames) < maxFrames {
				f := gifFrame{gce: gce, image: src[p:end:end]}
				if gce != nil {
					f.disposal = (gce[3] >> 2) & 7
					f.delay = int(gce[4]) | int(gce[5])<<8
				}
				l.frames = append(l.frames, f)
			}
			gce = nil
			p = end
		default: // trailer or garbage
			return l, nil
		}
	}
	return l, nil
}

// decodeFrame decodes frame i alone by handing image/gif a GIF made of the
// header, the frame's control extension and the frame.
func (l *gifLayout) decodeFrame(i int) (*image.Paletted, error) {
	f := l.frames[i]
	var b bytes.Buffer
	b.Grow(len(l.head) + len(f.gce) + len(f.image) + 1)
	b.Write(l.head)
	b.Write(f.gce)
	b.Write(f.image)
	b.WriteByte(0x3b)
	m, err := gif.Decode(&b)
	if err != nil {
		return nil, decodeError("gif", err)
	}
	pm, ok := m.(*image.Paletted)
	if !ok {
		return nil, fmt.Errorf("%w: gif: frame is %T", ErrCorrupt, m)
	}
	return pm, nil
}

// drawFrame paints the opaque pixels of m onto canvas (the GIF "over"
// operation: transparent entries leave the canvas as it was).
func drawFrame(canvas *image.RGBA, m *image.Paletted) {
	var lut [256]color.RGBA
	var opaque [256]bool
	for i, c := range m.Palette {
		if i >= 256 {
			break
		}
		r, g, b, a := c.RGBA()
		lut[i] = color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
		opaque[i] = a != 0
	}
	r := m.Rect.Intersect(canvas.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		srow := m.Pix[m.PixOffset(r.Min.X, y):m.PixOffset(r.Max.X, y)]
		drow := canvas.Pix[canvas.PixOffset(r.Min.X, y):canvas.PixOffset(r.Max.X, y)]
		for x, idx := range srow {
			if !opaque[idx] {
				continue // includes indices beyond the palette
			}
			c := lut[idx]
			d := drow[x*4 : x*4+4 : x*4+4]
			d[0], d[1], d[2], d[3] = c.R, c.G, c.B, c.A
		}
	}
}

// clearRect makes r transparent on canvas.
func clearRect(canvas *image.RGBA, r image.Rectangle) {
	r = r.Intersect(canvas.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		clear(canvas.Pix[canvas.PixOffset(r.Min.X, y):canvas.PixOffset(r.Max.X, y)])
	}
}

// copyRect copies r of src onto dst; both have the same bounds.
func copyRect(dst, src *image.RGBA, r image.Rectangle) {
	r = r.Intersect(dst.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		i, j := dst.PixOffset(r.Min.X, y), dst.PixOffset(r.Max.X, y)
		copy(dst.Pix[i:j], src.Pix[i:j])
	}
}

// composeGIF decodes the frames of l one at a time onto one canvas, applying
// each frame's disposal, and calls emit with the canvas as it is shown after
// each frame. It stops at the first frame that does not decode; that is an
// error only for the first frame.
func composeGIF(l *gifLayout, w, h, n int, emit func(canvas *image.RGBA, f gifFrame, palette color.Palette) error) error {
	canvas := image.NewRGBA(image.Rect(0, 0, w, h))
	var saved *image.RGBA
	return eachFrame(min(n, len(l.frames)), l.decodeFrame, func(i int, m *image.Paletted) error {
		f := l.frames[i]
		if f.disposal == gif.DisposalPrevious {
			if saved == nil {
				saved = image.NewRGBA(canvas.Rect)
			}
			copyRect(saved, canvas, m.Rect)
		}
		drawFrame(canvas, m)
		if err := emit(canvas, f, m.Palette); err != nil {
			return err
		}
		switch f.disposal {
		case gif.DisposalBackground:
			clearRect(canvas, m.Rect)
		case gif.DisposalPrevious:
			copyRect(canvas, saved, m.Rect)
		}
		return nil
	})
}

// eachFrame decodes frames 0 to n-1 of an animation in turn and hands each
// to use. It stops at the first frame that does not decode; that is an
// error only for the first frame.
func eachFrame[M any](n int, decode func(i int) (M, error), use func(i int, m M) error) error {
	for i := range n {
		m, err := decode(i)
		if err != nil {
			if i == 0 {
				return err
			}
			return nil
		}
		if err := use(i, m); err != nil {
			return err
		}
	}
	return nil
}

// quantizer maps colors to the nearest entry of a palette (squared RGB
// distance, first entry wins ties), with a direct-mapped cache. It does not
// dither, so the output depends only on the input pixels.
type quantizer struct {
	pal         color.Palette
	rgb         [][3]int32
	transparent int // index of a fully transparent entry, or -1
	cache       [4096]struct {
		key uint32 // 0xff<<24 | rgb; zero means empty
		idx uint8
	}
}

// newQuantizer builds a quantizer for pal, adding a transparent entry when
// needTransparent and pal has none (replacing the last entry of a full
// palette).
func newQuantizer(pal color.Palette, needTransparent bool) *quantizer {
	if len(pal) > 256 {
		pal = pal[:256]
	}
	q := &quantizer{transparent: -1}
	q.pal = make(color.Palette, len(pal), 256)
	copy(q.pal, pal)
	for i, c := range q.pal {
		if _, _, _, a := c.RGBA(); a == 0 {
			q.transparent = i
			break
		}
	}
	if q.transparent < 0 && (needTransparent || len(q.pal) == 0) {
		if len(q.pal) == 256 {
			q.pal = q.pal[:255]
		}
		q.pal = append(q.pal, color.RGBA{})
		q.transparent = len(q.pal) - 1
	}
	q.rgb = make([][3]int32, len(q.pal))
	for i, c := range q.pal {
		r, g, b, _ := color.NRGBAModel.Convert(c).RGBA()
		q.rgb[i] = [3]int32{int32(r >> 8), int32(g >> 8), int32(b >> 8)}
	}
	return q
}

func (q *quantizer) index(r, g, b uint8) uint8 {
	key := 0xff<<24 | uint32(r)<<16 | uint32(g)<<8 | uint32(b)
	slot := &q.cache[(key*2654435761)>>20]
	if slot.key == key {
		return slot.idx
	}
	best, bestD := 0, int32(1<<30)
	for i, c := range q.rgb {
		if i == q.transparent {
			continue
		}
		dr, dg, db := c[0]-int32(r), c[1]-int32(g), c[2]-int32(b)
		if d := dr*dr + dg*dg + db*db; d < bestD {
			best, bestD = i, d
		}
	}
	if bestD == 1<<30 && q.transparent >= 0 {
		best = q.transparent // a palette with no opaque entry
	}
	slot.key, slot.idx = key, uint8(best)
	return uint8(best)
}

// quantize converts the premultiplied m to a paletted image. Pixels less
// than half opaque become the transparent entry.
func (q *quantizer) quantize(m *image.RGBA) *image.Paletted {
	out := image.NewPaletted(m.Rect, q.pal)
	for y := m.Rect.Min.Y; y < m.Rect.Max.Y; y++ {
		src := m.Pix[m.PixOffset(m.Rect.Min.X, y):m.PixOffset(m.Rect.Max.X, y)]
		dst := out.Pix[out.PixOffset(m.Rect.Min.X, y):out.PixOffset(m.Rect.Max.X, y)]
		for x := range dst {
			p := src[x*4 : x*4+4 : x*4+4]
			a := p[3]
			switch {
			case a < 128 && q.transparent >= 0:
				dst[x] = uint8(q.transparent)
			case a == 255:
				dst[x] = q.index(p[0], p[1], p[2])
			default:
				un := func(c uint8) uint8 {
					v := uint32(c) * 255 / uint32(max(a, 1))
					return uint8(min(v, 255))
				}
				dst[x] = q.index(un(p[0]), un(p[1]), un(p[2]))
			}
		}
	}
	return out
}
