package thumbgen

import (
	"image"
	"math"

	"golang.org/x/image/draw"
)

// catmullRom scales region sr of src to a new dw×dh image with the same
// Catmull-Rom kernel as x/image/draw's CatmullRom (support 2, widened by the
// ratio when shrinking, taps outside sr dropped and the rest renormalised),
// in fixed point: each source pixel is converted to RGB once, filtered
// across its row into a ring of rows, and the rows are filtered down the
// columns. It knows *image.YCbCr (any subsampling), *image.RGBA (alpha
// premultiplied, as draw treats it) and *image.Gray; other types, or an sr
// not inside src, go to draw.CatmullRom.
//
// Weights carry weightBits fractional bits. A row-filtered value is an int16
// with rowFracBits fractional bits: Catmull-Rom's overshoot keeps it within
// -0.125×255 to 1.125×255, which fits. The column sums are int32 with
// weightBits+rowFracBits fractional bits, well inside range for the same reason.
func catmullRom(src image.Image, sr image.Rectangle, dw, dh int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	rows, nc := sourceRows(src, sr)
	if rows == nil || dw <= 0 || dh <= 0 {
		draw.CatmullRom.Scale(dst, dst.Rect, src, sr, draw.Src, nil)
		return dst
	}
	h := kernelWeights(dw, sr.Dx())
	v := kernelWeights(dh, sr.Dy())
	ring := newRowRing(v.span(), dw*nc)
	acc := make([]int32, dw*nc)
	next := 0 // the next source row (relative to sr) to filter into ring
	for y := range dh {
		coords, weights := v.taps(y)
		for ; next <= int(coords[len(coords)-1]); next++ {
			h.filterRow(ring.row(next), rows(sr.Min.Y+next), nc)
		}
		clear(acc)
		for i, c := range coords {
			addWeighted(acc, ring.row(int(c)), weights[i])
		}
		storeRow(dst.Pix[y*dst.Stride:][:4*dw], acc, nc)
	}
	return dst
}

const (
	weightBits  = 14 // fractional bits of a kernel weight
	rowFracBits = 6  // fractional bits of a row-filtered value
)

// sourceRows returns a function giving row y of src, the columns of sr only,
// as 8-bit pixels of nc channels: RGB (nc 3) for opaque types, premultiplied
// RGBA (nc 4) for RGBA. The returned slice is only valid until the next call.
// It returns nil for the types it does not know.
func sourceRows(src image.Image, sr image.Rectangle) (rows func(y int) []uint8, nc int) {
	if sr.Empty() || !sr.In(src.Bounds()) {
		return nil, 0
	}
	switch m := src.(type) {
	case *image.YCbCr:
		return ycbcrRows(m, sr), 3
	case *image.RGBA:
		return func(y int) []uint8 {
			i := m.PixOffset(sr.Min.X, y)
			return m.Pix[i : i+4*sr.Dx()]
		}, 4
	case *image.Gray:
		buf := make([]uint8, 3*sr.Dx())
		return func(y int) []uint8 {
			i := m.PixOffset(sr.Min.X, y)
			for x, g := range m.Pix[i : i+sr.Dx()] {
				buf[3*x], buf[3*x+1], buf[3*x+2] = g, g, g
			}
			return buf
		}, 3
	}
	return nil, 0
}

// ycbcrRows converts the rows of sr to RGB, taking each pixel's chroma from
// the sample covering it (as image.YCbCr.At and x/image/draw do).
func ycbcrRows(m *image.YCbCr, sr image.Rectangle) func(y int) []uint8 {
	sw := sr.Dx()
	colC := make([]int, sw) // chroma column offsets; COffset adds the row's
	for i := range colC {
		colC[i] = m.COffset(sr.Min.X+i, m.Rect.Min.Y)
	}
	buf := make([]uint8, 3*sw)
	return func(y int) []uint8 {
		luma := m.Y[m.YOffset(sr.Min.X, y):][:sw]
		crow := m.COffset(m.Rect.Min.X, y)
		cb, cr := m.Cb[crow:], m.Cr[crow:]
		out := buf[:3*sw]
		for i, c := range colC {
			p := out[3*i : 3*i+3 : 3*i+3]
			p[0], p[1], p[2] = ycbcrToRGB(luma[i], cb[c], cr[c])
		}
		return buf
	}
}

// ycbcrToRGB is color.YCbCrToRGB, small enough here to be inlined.
func ycbcrToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy := int32(y) * 0x10101
	cb1, cr1 := int32(cb)-128, int32(cr)-128
	return clampRGB(yy + 91881*cr1), clampRGB(yy - 22554*cb1 - 46802*cr1), clampRGB(yy + 116130*cb1)
}

// clampRGB turns a 16.16 fixed-point channel into a byte, clamping.
func clampRGB(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	return uint8(^(v >> 31))
}

// weights holds the taps of every output column (or row): the source
// coordinates (relative to sr) and fixed-point weights of output i are
// coord[start[i]:start[i+1]] and weight[start[i]:start[i+1]].
type weights struct {
	start  []int32
	coord  []int32
	weight []int32
}

// kernelWeights computes the Catmull-Rom taps mapping sw source samples to
// dw, as x/image/draw's Kernel does, rounded to weightBits so that each
// output's weights sum to exactly 1.
func kernelWeights(dw, sw int) weights {
	scale := float64(sw) / float64(dw)
	halfWidth, argScale := 2.0, 1.0
	if scale > 1 { // shrinking: widen the kernel to cover every source sample
		halfWidth, argScale = 2*scale, 1/scale
	}
	w := weights{start: make([]int32, 1, dw+1)}
	var f []float64
	for x := range dw {
		center := (float64(x)+0.5)*scale - 0.5
		lo := max(0, int(math.Floor(center-halfWidth)))
		hi := min(sw, int(math.Ceil(center+halfWidth)))
		f = f[:0]
		total := 0.0
		first := len(w.coord)
		for c := lo; c < hi; c++ {
			if k := catmullRomAt(math.Abs((center - float64(c)) * argScale)); k != 0 {
				w.coord = append(w.coord, int32(c))
				f = append(f, k)
				total += k
			}
		}
		if total == 0 { // no tap in range: take the nearest sample
			w.coord = append(w.coord[:first], int32(min(max(0, int(math.Round(center))), sw-1)))
			f, total = append(f[:0], 1), 1
		}
		w.weight = append(w.weight, quantise(f, total)...)
		w.start = append(w.start, int32(len(w.coord)))
	}
	return w
}

// catmullRomAt is the Catmull-Rom kernel (B=0, C=0.5) at distance t >= 0.
func catmullRomAt(t float64) float64 {
	switch {
	case t < 1:
		return (1.5*t-2.5)*t*t + 1
	case t < 2:
		return ((-0.5*t+2.5)*t-4)*t + 2
	}
	return 0
}

// quantise normalises f by total into weightBits fixed point, giving the
// rounding remainder to the largest weight so that the sum is exact.
func quantise(f []float64, total float64) []int32 {
	q := make([]int32, len(f))
	sum, big := int32(0), 0
	for i, v := range f {
		q[i] = int32(math.Round(v / total * (1 << weightBits)))
		sum += q[i]
		if q[i] > q[big] {
			big = i
		}
	}
	q[big] += 1<<weightBits - sum
	return q
}

// taps returns the source coordinates and weights of output i.
func (w *weights) taps(i int) (coords, weights []int32) {
	a, b := w.start[i], w.start[i+1]
	return w.coord[a:b], w.weight[a:b]
}

// span is the most source samples one output reaches, first tap to last.
func (w *weights) span() int {
	n := 1
	for i := range len(w.start) - 1 {
		c, _ := w.taps(i)
		n = max(n, int(c[len(c)-1]-c[0])+1)
	}
	return n
}

// filterRow filters one source row of nc-channel pixels across to the
// len(w.start)-1 output columns, into dst with rowFracBits fractional bits.
func (w *weights) filterRow(dst []int16, src []uint8, nc int) {
	const half = 1 << (weightBits - rowFracBits - 1)
	for x := range len(w.start) - 1 {
		coords, weights := w.taps(x)
		if nc == 3 {
			var r, g, b int32
			for i, c := range coords {
				p := src[3*c : 3*c+3 : 3*c+3]
				k := weights[i]
				r += k * int32(p[0])
				g += k * int32(p[1])
				b += k * int32(p[2])
			}
			d := dst[3*x : 3*x+3 : 3*x+3]
			d[0] = int16((r + half) >> (weightBits - rowFracBits))
			d[1] = int16((g + half) >> (weightBits - rowFracBits))
			d[2] = int16((b + half) >> (weightBits - rowFracBits))
			continue
		}
		var r, g, b, a int32
		for i, c := range coords {
			p := src[4*c : 4*c+4 : 4*c+4]
			k := weights[i]
			r += k * int32(p[0])
			g += k * int32(p[1])
			b += k * int32(p[2])
			a += k * int32(p[3])
		}
		d := dst[4*x : 4*x+4 : 4*x+4]
		d[0] = int16((r + half) >> (weightBits - rowFracBits))
		d[1] = int16((g + half) >> (weightBits - rowFracBits))
		d[2] = int16((b + half) >> (weightBits - rowFracBits))
		d[3] = int16((a + half) >> (weightBits - rowFracBits))
	}
}

// rowRing keeps the last n row-filtered source rows: row y lives in slot
// y mod n. The column filter walks down monotonically and never needs rows
// further apart than n, so a row is overwritten only once no longer needed.
type rowRing struct {
	buf    []int16
	n, len int
}

func newRowRing(n, rowLen int) rowRing {
	return rowRing{buf: make([]int16, n*rowLen), n: n, len: rowLen}
}

func (r rowRing) row(y int) []int16 {
	i := (y % r.n) * r.len
	return r.buf[i : i+r.len]
}

// addWeighted adds k times row to acc.
func addWeighted(acc []int32, row []int16, k int32) {
	row = row[:len(acc)]
	for i, v := range row {
		acc[i] += k * int32(v)
	}
}

// storeRow rounds the column sums in acc to bytes in dst, an RGBA row:
// opaque RGB (nc 3) gets alpha 0xff; premultiplied RGBA (nc 4) has its
// colour clamped to its alpha, as draw does.
func storeRow(dst []uint8, acc []int32, nc int) {
	if nc == 3 {
		for x := range len(dst) / 4 {
			s := acc[3*x : 3*x+3 : 3*x+3]
			d := dst[4*x : 4*x+4 : 4*x+4]
			d[0], d[1], d[2], d[3] = toByte(s[0]), toByte(s[1]), toByte(s[2]), 0xff
		}
		return
	}
	for x := range len(dst) / 4 {
		s := acc[4*x : 4*x+4 : 4*x+4]
		d := dst[4*x : 4*x+4 : 4*x+4]
		a := toByte(s[3])
		d[0], d[1], d[2], d[3] = min(toByte(s[0]), a), min(toByte(s[1]), a), min(toByte(s[2]), a), a
	}
}

// toByte rounds a column sum (weightBits+rowFracBits fractional bits) to a
// byte, clamping.
func toByte(v int32) uint8 {
	const bits = weightBits + rowFracBits
	return uint8(min(max((v+1<<(bits-1))>>bits, 0), 255))
}
