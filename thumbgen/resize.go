package thumbgen

import (
	"image"
	"image/color"
	stddraw "image/draw"

	"golang.org/x/image/draw"
)

// plan is the geometry of one thumbnail, in display orientation: the region
// of the source that is shown and the size it is resampled to.
type plan struct {
	region     image.Rectangle // within (0,0)-(w,h) of the displayed source
	outW, outH int
}

// planFor follows Synapse: "scale" fits the source within the requested box
// keeping its aspect ratio; "crop" covers the box and cuts the overflow from
// the centre. Neither ever upscales: a crop box larger than the source in one
// dimension shrinks, keeping its aspect ratio, until it fits.
func planFor(w, h int, req Request) plan {
	full := image.Rect(0, 0, w, h)
	rw, rh := req.Width, req.Height
	if req.Method == Crop {
		cw, ch := rw, rh
		if cw > w {
			ch, cw = max(1, ch*w/cw), w
		}
		if ch > h {
			cw, ch = max(1, cw*h/ch), h
		}
		// The largest centred region of aspect cw:ch.
		var region image.Rectangle
		if cw*h > ch*w { // box wider than the source: full width
			rh := min(h, max(1, (w*ch+cw/2)/cw))
			top := (h - rh) / 2
			region = image.Rect(0, top, w, top+rh)
		} else {
			rw := min(w, max(1, (h*cw+ch/2)/ch))
			left := (w - rw) / 2
			region = image.Rect(left, 0, left+rw, h)
		}
		return plan{region: region, outW: cw, outH: ch}
	}
	// scale: the requested size is a minimum (matrix-media.md): the
	// smallest size with the source's aspect ratio that covers the box.
	// (Synapse fits inside the box instead; the contract says otherwise.)
	var ow, oh int
	if rw*h >= rh*w { // the width decides
		ow, oh = rw, (rw*h+w-1)/w
	} else {
		ow, oh = (rh*w+h-1)/h, rh
	}
	ow, oh = min(max(ow, 1), w), min(max(oh, 1), h)
	return plan{region: full, outW: ow, outH: oh}
}

// resample scales region sr of src to a new dw×dh image. A large reduction
// first averages k×k blocks (a box filter) down to between two and three
// times the target, then finishes with CatmullRom (catmullRom, our own for
// the common types). See doc.go for the measurements behind this.
func resample(src image.Image, sr image.Rectangle, dw, dh int) *image.RGBA {
	if sr.Dx() == dw && sr.Dy() == dh {
		dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
		stddraw.Draw(dst, dst.Rect, src, sr.Min, stddraw.Src)
		return dst
	}
	if k := min(sr.Dx()/(2*dw), sr.Dy()/(2*dh)); k >= 2 {
		if m := boxReduce(src, sr, k); m != nil {
			src, sr = m, m.Rect
		} else {
			src, sr = halve(src, sr, dw, dh)
		}
	}
	return catmullRom(src, sr, dw, dh)
}

// halve halves sr with ApproxBiLinear (at exactly 2:1 it averages 2×2
// blocks) while the result stays at least twice dw×dh. It serves the image
// types boxReduce does not know.
func halve(src image.Image, sr image.Rectangle, dw, dh int) (image.Image, image.Rectangle) {
	for sr.Dx()/2 >= 2*dw && sr.Dy()/2 >= 2*dh {
		half := image.NewRGBA(image.Rect(0, 0, sr.Dx()/2, sr.Dy()/2))
		draw.ApproxBiLinear.Scale(half, half.Rect, src, sr, draw.Src, nil)
		src, sr = half, half.Rect
	}
	return src, sr
}

// boxReduce averages the k×k blocks of sr (centred; the fewer than k
// leftover rows and columns are dropped) into a new image. It knows the
// types big images decode to (YCbCr from JPEG and lossy WebP, RGBA from
// PNG, BMP and GIF canvases, Gray) and returns nil for the others.
func boxReduce(src image.Image, sr image.Rectangle, k int) *image.RGBA {
	w, h := sr.Dx()/k, sr.Dy()/k
	x0 := sr.Min.X + (sr.Dx()-w*k)/2
	y0 := sr.Min.Y + (sr.Dy()-h*k)/2
	n := uint32(k * k)
	avg := func(sum uint32) uint8 { return uint8((sum + n/2) / n) }
	var dst *image.RGBA
	switch m := src.(type) {
	case *image.YCbCr:
		dst = image.NewRGBA(image.Rect(0, 0, w, h))
		colC := make([]int, w*k) // chroma column offsets
		for i := range colC {
			colC[i] = m.COffset(x0+i, m.Rect.Min.Y)
		}
		acc := make([]uint32, 3*w)
		for oy := range h {
			clear(acc)
			for y := y0 + oy*k; y < y0+(oy+1)*k; y++ {
				yrow := m.Y[m.YOffset(x0, y):]
				crow := m.COffset(m.Rect.Min.X, y)
				for ox := range w {
					var sy, sb, sr uint32
					for i := ox * k; i < (ox+1)*k; i++ {
						sy += uint32(yrow[i])
						sb += uint32(m.Cb[crow+colC[i]])
						sr += uint32(m.Cr[crow+colC[i]])
					}
					acc[3*ox] += sy
					acc[3*ox+1] += sb
					acc[3*ox+2] += sr
				}
			}
			row := dst.Pix[oy*dst.Stride:]
			for ox := range w {
				r, g, b := color.YCbCrToRGB(avg(acc[3*ox]), avg(acc[3*ox+1]), avg(acc[3*ox+2]))
				row[4*ox], row[4*ox+1], row[4*ox+2], row[4*ox+3] = r, g, b, 0xff
			}
		}
	case *image.RGBA:
		dst = image.NewRGBA(image.Rect(0, 0, w, h))
		acc := make([]uint32, 4*w)
		for oy := range h {
			clear(acc)
			for y := y0 + oy*k; y < y0+(oy+1)*k; y++ {
				srow := m.Pix[m.PixOffset(x0, y):m.PixOffset(x0+w*k, y)]
				for ox := range w {
					var s0, s1, s2, s3 uint32
					for i := 4 * ox * k; i < 4*(ox+1)*k; i += 4 {
						s0 += uint32(srow[i])
						s1 += uint32(srow[i+1])
						s2 += uint32(srow[i+2])
						s3 += uint32(srow[i+3])
					}
					acc[4*ox] += s0
					acc[4*ox+1] += s1
					acc[4*ox+2] += s2
					acc[4*ox+3] += s3
				}
			}
			row := dst.Pix[oy*dst.Stride:]
			for i := range 4 * w {
				row[i] = avg(acc[i])
			}
		}
	case *image.Gray:
		dst = image.NewRGBA(image.Rect(0, 0, w, h))
		acc := make([]uint32, w)
		for oy := range h {
			clear(acc)
			for y := y0 + oy*k; y < y0+(oy+1)*k; y++ {
				srow := m.Pix[m.PixOffset(x0, y):m.PixOffset(x0+w*k, y)]
				for ox := range w {
					var s uint32
					for _, v := range srow[ox*k : (ox+1)*k] {
						s += uint32(v)
					}
					acc[ox] += s
				}
			}
			row := dst.Pix[oy*dst.Stride:]
			for ox := range w {
				v := avg(acc[ox])
				row[4*ox], row[4*ox+1], row[4*ox+2], row[4*ox+3] = v, v, v, 0xff
			}
		}
	}
	return dst
}

// resampleMemory estimates the bytes resample allocates at its peak.
func resampleMemory(sw, sh, dw, dh int) int64 {
	out := 4 * pixels(dw, dh)
	if sw == dw && sh == dh {
		return out
	}
	// The larger of boxReduce and halve: the halvings.
	var halves int64
	for sw/2 >= 2*dw && sh/2 >= 2*dh {
		sw, sh = sw/2, sh/2
		halves += 4 * pixels(sw, sh)
	}
	// x/image/draw's kernel scaler (catmullRom's fallback; catmullRom itself
	// needs far less) keeps a [4]float64 per (dst column, src row).
	return out + halves + 32*pixels(dw, sh)
}

// orient maps a pixel of the displayed image (size W×H) to the stored image
// (size w×h) for EXIF orientation o.
func orient(o, x, y, w, h int) (int, int) {
	switch o {
	case 2:
		return w - 1 - x, y
	case 3:
		return w - 1 - x, h - 1 - y
	case 4:
		return x, h - 1 - y
	case 5:
		return y, x
	case 6:
		return y, h - 1 - x
	case 7:
		return w - 1 - y, h - 1 - x
	case 8:
		return w - 1 - y, x
	}
	return x, y
}

// storedRect maps a rectangle of the displayed image to the stored one.
func storedRect(o int, r image.Rectangle, w, h int) image.Rectangle {
	x0, y0 := orient(o, r.Min.X, r.Min.Y, w, h)
	x1, y1 := orient(o, r.Max.X-1, r.Max.Y-1, w, h)
	return image.Rect(min(x0, x1), min(y0, y1), max(x0, x1)+1, max(y0, y1)+1)
}

// reorient turns m, in stored orientation, into display orientation o.
func reorient(o int, m *image.RGBA) *image.RGBA {
	if o <= 1 || o > 8 {
		return m
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	W, H := w, h
	if o >= 5 {
		W, H = h, w
	}
	out := image.NewRGBA(image.Rect(0, 0, W, H))
	for y := 0; y < H; y++ {
		row := out.Pix[y*out.Stride : y*out.Stride+4*W]
		for x := 0; x < W; x++ {
			sx, sy := orient(o, x, y, w, h)
			i := sy*m.Stride + 4*sx
			copy(row[4*x:4*x+4], m.Pix[i:i+4])
		}
	}
	return out
}
