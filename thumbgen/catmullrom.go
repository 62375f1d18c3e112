package thumbgen

import (
	"image"
	"math"

	"golang.org/x/image/draw"
)

// catmullRom scales region sr of src to a new dw×dh image with the same
// Catmull-Rom kernel as x/image/draw's CatmullRom (support 2, widened by the
// ratio when shrinking, taps outside sr dropped and the rest renormalised),
// in fixed point: each source row is converted once to 8-bit planes (R, G,
// B and, for RGBA, premultiplied A; one plane for Gray), filtered across
// into a ring of rows, and the rows are filtered down the columns. It knows
// *image.YCbCr (any subsampling), *image.RGBA and *image.Gray; other types,
// or an sr not inside src, go to draw.CatmullRom.
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
	ring := newRowRing(v.n, nc*dw)
	acc := make([]int32, nc*dw)
	// The non-zero taps of one output row.
	rowsY, weightsY := make([][]int16, 0, v.n), make([]int32, 0, v.n)
	next := 0 // the next source row (relative to sr) to filter into ring
	for y := range dh {
		first, weights := v.taps(y)
		for ; next < first+v.n; next++ {
			row, planes := ring.row(next), rows(sr.Min.Y+next)
			if nc == 3 {
				h.filterRGB(row[:dw], row[dw:2*dw], row[2*dw:], planes[0], planes[1], planes[2])
				continue
			}
			for c, plane := range planes {
				h.filterPlane(row[c*dw:][:dw], plane)
			}
		}
		rowsY, weightsY = rowsY[:0], weightsY[:0]
		for i, k := range weights {
			if k != 0 {
				rowsY, weightsY = append(rowsY, ring.row(first+i)), append(weightsY, k)
			}
		}
		clear(acc)
		addWeighted(acc, rowsY, weightsY)
		storeRow(dst.Pix[y*dst.Stride:][:4*dw], acc, nc)
	}
	return dst
}

const (
	weightBits  = 14 // fractional bits of a kernel weight
	rowFracBits = 6  // fractional bits of a row-filtered value
)

// sourceRows returns a function giving row y of src, the columns of sr only,
// as nc planes of 8-bit samples: R, G, B for YCbCr and opaque RGBA;
// R, G, B, A (premultiplied) for other RGBA; the one plane of Gray. The planes are only valid
// until the next call. It returns nil for the types it does not know.
func sourceRows(src image.Image, sr image.Rectangle) (rows func(y int) [][]uint8, nc int) {
	if sr.Empty() || !sr.In(src.Bounds()) {
		return nil, 0
	}
	sw := sr.Dx()
	switch m := src.(type) {
	case *image.YCbCr:
		return ycbcrRows(m, sr), 3
	case *image.RGBA:
		nc := 4
		if m.SubImage(sr).(*image.RGBA).Opaque() { // alpha is all 0xff: filter RGB only
			nc = 3
		}
		planes := newPlanes(4, sw)
		return func(y int) [][]uint8 {
			pix := m.Pix[m.PixOffset(sr.Min.X, y):][:4*sw]
			r, g, b, a := planes[0], planes[1], planes[2], planes[3][:len(planes[0])]
			for i := range r {
				p := pix[4*i : 4*i+4 : 4*i+4]
				r[i], g[i], b[i], a[i] = p[0], p[1], p[2], p[3]
			}
			return planes[:nc]
		}, nc
	case *image.Gray:
		return func(y int) [][]uint8 {
			return [][]uint8{m.Pix[m.PixOffset(sr.Min.X, y):][:sw]}
		}, 1
	}
	return nil, 0
}

// newPlanes makes n planes of w samples.
func newPlanes(n, w int) [][]uint8 {
	buf := make([]uint8, n*w)
	planes := make([][]uint8, n)
	for i := range planes {
		planes[i] = buf[i*w : (i+1)*w : (i+1)*w]
	}
	return planes
}

// ycbcrRows converts the rows of sr to RGB, taking each pixel's chroma from
// the sample covering it (as image.YCbCr.At and x/image/draw do).
func ycbcrRows(m *image.YCbCr, sr image.Rectangle) func(y int) [][]uint8 {
	sw := sr.Dx()
	colC := make([]int, sw) // chroma column offsets; COffset adds the row's
	for i := range colC {
		colC[i] = m.COffset(sr.Min.X+i, m.Rect.Min.Y)
	}
	planes := newPlanes(3, sw)
	return func(y int) [][]uint8 {
		luma := m.Y[m.YOffset(sr.Min.X, y):][:sw]
		crow := m.COffset(m.Rect.Min.X, y)
		cb, cr := m.Cb[crow:], m.Cr[crow:]
		r, g, b := planes[0][:sw], planes[1][:sw], planes[2][:sw]
		last, dr, dg, db := -1, int32(0), int32(0), int32(0)
		for i, c := range colC {
			if c != last { // subsampled chroma: neighbours share the terms
				cb1, cr1 := int32(cb[c])-128, int32(cr[c])-128
				dr, dg, db, last = 91881*cr1, -22554*cb1-46802*cr1, 116130*cb1, c
			}
			yy := int32(luma[i]) * 0x10101
			r[i], g[i], b[i] = clampRGB(yy+dr), clampRGB(yy+dg), clampRGB(yy+db)
		}
		return planes
	}
}

// clampRGB turns a 16.16 fixed-point channel into a byte, clamping, as
// color.YCbCrToRGB does.
func clampRGB(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	return uint8(^(v >> 31))
}

// weights holds the taps of every output column (or row): n consecutive
// source coordinates (relative to sr) from start[i], with fixed-point
// weights weight[i*n:(i+1)*n], zero where the kernel does not reach.
type weights struct {
	n      int
	start  []int
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
	w := weights{n: 1, start: make([]int, dw)}
	lo, hi, center := make([]int, dw), make([]int, dw), make([]float64, dw)
	for x := range dw {
		center[x] = (float64(x)+0.5)*scale - 0.5
		lo[x] = min(sw-1, max(0, int(math.Floor(center[x]-halfWidth))))
		hi[x] = max(lo[x]+1, min(sw, int(math.Ceil(center[x]+halfWidth))))
		w.n = max(w.n, hi[x]-lo[x])
	}
	if n4 := (w.n + 3) &^ 3; n4 <= sw { // whole groups of four for filterRGB
		w.n = n4
	}
	w.weight = make([]int32, dw*w.n)
	f := make([]float64, w.n)
	for x := range dw {
		w.start[x] = min(lo[x], sw-w.n)
		clear(f)
		total := 0.0
		for c := lo[x]; c < hi[x]; c++ {
			k := catmullRomAt(math.Abs((center[x] - float64(c)) * argScale))
			f[c-w.start[x]] = k
			total += k
		}
		if total == 0 { // no tap in reach: take the nearest sample
			c := min(max(0, int(math.Round(center[x]))), sw-1)
			f[c-w.start[x]], total = 1, 1
		}
		quantise(w.weight[x*w.n:(x+1)*w.n], f, total)
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

// quantise stores f normalised by total into q in weightBits fixed point,
// giving the rounding remainder to the largest weight so that the sum is
// exact.
func quantise(q []int32, f []float64, total float64) {
	sum, big := int32(0), 0
	for i, v := range f {
		q[i] = int32(math.Round(v / total * (1 << weightBits)))
		sum += q[i]
		if q[i] > q[big] {
			big = i
		}
	}
	q[big] += 1<<weightBits - sum
}

// taps returns the first source coordinate and the n weights of output i.
func (w *weights) taps(i int) (first int, weights []int32) {
	return w.start[i], w.weight[i*w.n : (i+1)*w.n]
}

// filterPlane filters one plane of a source row across to the outputs,
// into dst with rowFracBits fractional bits.
func (w *weights) filterPlane(dst []int16, src []uint8) {
	const shift = weightBits - rowFracBits
	for x := range dst {
		first, weights := w.taps(x)
		s := src[first:][:len(weights)]
		sum := int32(1 << (shift - 1))
		for i, k := range weights {
			sum += k * int32(s[i])
		}
		dst[x] = int16(sum >> shift)
	}
}

// filterRGB is filterPlane for three planes at once, sharing the weights,
// four taps a step.
func (w *weights) filterRGB(dr, dg, db []int16, r, g, b []uint8) {
	const shift = weightBits - rowFracBits
	dg, db = dg[:len(dr)], db[:len(dr)]
	for x := range dr {
		first, k := w.taps(x)
		sr, sg, sb := r[first:][:len(k)], g[first:][:len(k)], b[first:][:len(k)]
		vr, vg, vb := int32(1<<(shift-1)), int32(1<<(shift-1)), int32(1<<(shift-1))
		i := 0
		for ; i+4 <= len(k); i += 4 {
			k4, r4, g4, b4 := k[i:i+4:i+4], sr[i:i+4:i+4], sg[i:i+4:i+4], sb[i:i+4:i+4]
			vr += k4[0]*int32(r4[0]) + k4[1]*int32(r4[1]) + k4[2]*int32(r4[2]) + k4[3]*int32(r4[3])
			vg += k4[0]*int32(g4[0]) + k4[1]*int32(g4[1]) + k4[2]*int32(g4[2]) + k4[3]*int32(g4[3])
			vb += k4[0]*int32(b4[0]) + k4[1]*int32(b4[1]) + k4[2]*int32(b4[2]) + k4[3]*int32(b4[3])
		}
		for ; i < len(k); i++ {
			vr += k[i] * int32(sr[i])
			vg += k[i] * int32(sg[i])
			vb += k[i] * int32(sb[i])
		}
		dr[x], dg[x], db[x] = int16(vr>>shift), int16(vg>>shift), int16(vb>>shift)
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

// addWeighted adds k[i] times rows[i] to acc for each i, four rows a pass.
func addWeighted(acc []int32, rows [][]int16, k []int32) {
	for ; len(rows) >= 4; rows, k = rows[4:], k[4:] {
		r0, r1, r2, r3 := rows[0][:len(acc)], rows[1][:len(acc)], rows[2][:len(acc)], rows[3][:len(acc)]
		k0, k1, k2, k3 := k[0], k[1], k[2], k[3]
		for i := range acc {
			acc[i] += k0*int32(r0[i]) + k1*int32(r1[i]) + k2*int32(r2[i]) + k3*int32(r3[i])
		}
	}
	for j, row := range rows {
		row, kj := row[:len(acc)], k[j]
		for i, v := range row {
			acc[i] += kj * int32(v)
		}
	}
}

// storeRow rounds the column sums in acc, nc planes, to bytes in dst, an
// RGBA row: Gray (nc 1) and RGB (nc 3) are opaque; premultiplied RGBA (nc 4)
// has its colour clamped to its alpha, as draw does.
func storeRow(dst []uint8, acc []int32, nc int) {
	w := len(dst) / 4
	switch nc {
	case 1:
		for x, s := range acc[:w] {
			v := toByte(s)
			d := dst[4*x : 4*x+4 : 4*x+4]
			d[0], d[1], d[2], d[3] = v, v, v, 0xff
		}
	case 3:
		r, g, b := acc[:w], acc[w : 2*w][:w], acc[2*w : 3*w][:w]
		for x := range r {
			d := dst[4*x : 4*x+4 : 4*x+4]
			d[0], d[1], d[2], d[3] = toByte(r[x]), toByte(g[x]), toByte(b[x]), 0xff
		}
	case 4:
		r, g, b, a := acc[:w], acc[w : 2*w][:w], acc[2*w : 3*w][:w], acc[3*w : 4*w][:w]
		for x := range r {
			d := dst[4*x : 4*x+4 : 4*x+4]
			ax := toByte(a[x])
			d[0], d[1], d[2], d[3] = min(toByte(r[x]), ax), min(toByte(g[x]), ax), min(toByte(b[x]), ax), ax
		}
	}
}

// toByte rounds a column sum (weightBits+rowFracBits fractional bits) to a
// byte, clamping.
func toByte(v int32) uint8 {
	const bits = weightBits + rowFracBits
	return uint8(min(max((v+1<<(bits-1))>>bits, 0), 255))
}
