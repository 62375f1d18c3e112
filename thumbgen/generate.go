package thumbgen

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"

	"github.com/mxcas/mxcas/thumbgen/jpegscale"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// JPEG quality and PNG compression of every thumbnail. Changing either
// changes the bytes of every thumbnail, which federation peers compare.
const (
	jpegQuality      = 80
	pngCompression   = png.BestSpeed
	contentTypeJPEG  = "image/jpeg"
	contentTypePNG   = "image/png"
	contentTypeGIF   = "image/gif"
	bytesPerPixel    = 4
	gifBytesPerPixel = 1
)

// Generate makes a thumbnail of src. Deterministic: the same src and req
// always give the same bytes. The requested size is a minimum; a source
// that cannot reach it without upscaling (for scale, one side no larger
// than asked; for crop, both) comes back as it is: the original bytes for JPEG, PNG and GIF
// (a GIF only when its animation is wanted or it has none), a PNG at the
// original size for WebP, BMP and TIFF. Generate never panics; it does not
// keep src, and the returned Data may alias src.
func Generate(src []byte, req Request, lim Limits) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = Result{}, fmt.Errorf("%w: thumbnail panicked: %v", ErrCorrupt, p)
		}
	}()
	if err := req.Validate(); err != nil {
		return Result{}, err
	}
	lim = lim.WithDefaults()
	frames := 2
	if req.Animated {
		frames = max(frames, lim.MaxFrames)
	}
	h, err := sniff(src, lim, frames)
	if err != nil {
		return Result{}, err
	}
	animated := req.Animated && h.Animated && h.Format == "gif"
	// A source that cannot cover the request without upscaling comes back
	// at its own size: for scale, one side no larger than asked; for crop,
	// both.
	small := h.Width <= req.Width && h.Height <= req.Height
	if req.Method != Crop {
		small = h.Width <= req.Width || h.Height <= req.Height
	}
	if small {
		switch {
		case h.Format == "jpeg":
			return Result{Data: src, ContentType: contentTypeJPEG, Width: h.Width, Height: h.Height}, nil
		case h.Format == "png" && (!h.Animated || req.Animated):
			// An APNG comes back as it is only when animation is wanted.
			return Result{Data: src, ContentType: contentTypePNG, Width: h.Width, Height: h.Height}, nil
		case h.Format == "gif" && (!h.Animated || animated):
			return Result{Data: src, ContentType: contentTypeGIF, Width: h.Width, Height: h.Height}, nil
		}
	}
	p := planFor(h.Width, h.Height, req)
	if small {
		p = plan{region: image.Rect(0, 0, h.Width, h.Height), outW: h.Width, outH: h.Height}
	}
	if animated {
		return animateGIF(&h, p, animatedFrames(h.Width, h.Height, lim))
	}
	denom := 1
	if h.Format == "jpeg" {
		denom = jpegDenom(p)
	}
	img, err := decodeStill(src, &h, denom)
	if err != nil {
		return Result{}, err
	}
	sr := scaleRect(storedRect(h.orientation, p.region, h.storedW, h.storedH), denom).Add(img.Bounds().Min)
	dw, dh := p.outW, p.outH
	if h.orientation >= 5 {
		dw, dh = dh, dw
	}
	m := reorient(h.orientation, resample(img, sr, dw, dh))
	asPNG := small || h.Format == "png" || h.Format == "gif" || (h.Format != "jpeg" && !m.Opaque())
	return encodeStill(m, asPNG)
}

// jpegDenom is the largest scale, of 8, 4, 2 and 1, at which a JPEG can be
// decoded (jpegscale) for plan p: the region shown, so scaled, still covers
// the output size (as Pillow's draft mode chooses).
func jpegDenom(p plan) int {
	for _, d := range []int{8, 4, 2} {
		if p.region.Dx()/d >= p.outW && p.region.Dy()/d >= p.outH {
			return d
		}
	}
	return 1
}

// scaleRect maps r, in a source's pixels, to that source decoded at 1/denom:
// the scaled pixels r touches.
func scaleRect(r image.Rectangle, denom int) image.Rectangle {
	return image.Rect(r.Min.X/denom, r.Min.Y/denom, ceilDiv(r.Max.X, denom), ceilDiv(r.Max.Y, denom))
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// decodeStill decodes the first frame of src, whose header is h; a JPEG at
// 1/denom of its size (other formats need denom 1).
func decodeStill(src []byte, h *header, denom int) (image.Image, error) {
	var (
		m   image.Image
		err error
	)
	r := bytes.NewReader(src)
	switch h.Format {
	case "jpeg":
		m, err = jpegscale.Decode(r, denom)
	case "png":
		m, err = png.Decode(r)
	case "gif":
		err = composeGIF(&h.gif, h.storedW, h.storedH, 1, func(canvas *image.RGBA, _ gifFrame, _ color.Palette) error {
			m = canvas
			return nil
		})
		if err == nil && m == nil {
			err = fmt.Errorf("%w: gif: no frames", ErrCorrupt)
		}
		if err != nil {
			return nil, err
		}
	case "webp":
		m, err = webp.Decode(r)
	case "bmp":
		m, err = bmp.Decode(r)
	case "tiff":
		m, err = tiff.Decode(r)
	default:
		return nil, ErrUnsupported
	}
	if err != nil {
		return nil, decodeError(h.Format, err)
	}
	if b := m.Bounds(); b.Dx() != ceilDiv(h.storedW, denom) || b.Dy() != ceilDiv(h.storedH, denom) {
		return nil, fmt.Errorf("%w: %s decodes to %v at 1/%d, header says %dx%d", ErrCorrupt, h.Format, b, denom, h.storedW, h.storedH)
	}
	return m, nil
}

// encodeStill encodes m as PNG or as JPEG.
func encodeStill(m *image.RGBA, asPNG bool) (Result, error) {
	var b bytes.Buffer
	res := Result{Width: m.Rect.Dx(), Height: m.Rect.Dy()}
	if asPNG {
		res.ContentType = contentTypePNG
		enc := png.Encoder{CompressionLevel: pngCompression}
		if err := enc.Encode(&b, m); err != nil {
			return Result{}, fmt.Errorf("thumbgen: encode png: %w", err)
		}
	} else {
		res.ContentType = contentTypeJPEG
		if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: jpegQuality}); err != nil {
			return Result{}, fmt.Errorf("thumbgen: encode jpeg: %w", err)
		}
	}
	res.Data = b.Bytes()
	return res, nil
}

// animateGIF makes an animated GIF thumbnail of the first maxFrames frames of
// the GIF h. Each output frame is the whole composited canvas, resampled and
// mapped to the source frame's palette without dithering.
func animateGIF(h *header, p plan, maxFrames int) (Result, error) {
	g := gif.GIF{LoopCount: h.gif.loopCount}
	err := composeGIF(&h.gif, h.storedW, h.storedH, maxFrames, func(canvas *image.RGBA, f gifFrame, pal color.Palette) error {
		m := resample(canvas, p.region, p.outW, p.outH)
		opaque := m.Opaque()
		g.Image = append(g.Image, newQuantizer(pal, !opaque).quantize(m))
		g.Delay = append(g.Delay, f.delay)
		// Each frame replaces the whole picture: with transparency in it,
		// the previous frame must be cleared first.
		disposal := byte(gif.DisposalNone)
		if !opaque {
			disposal = gif.DisposalBackground
		}
		g.Disposal = append(g.Disposal, disposal)
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &g); err != nil {
		return Result{}, fmt.Errorf("thumbgen: encode gif: %w", err)
	}
	return Result{Data: b.Bytes(), ContentType: contentTypeGIF, Width: p.outW, Height: p.outH}, nil
}

// animatedFrames is how many frames of a w×h animation are composited and
// resampled: lim.MaxFrames, and no more than keeps the pixels processed
// within animatedPixelBudget times lim.MaxPixels (a big canvas with hundreds
// of one-pixel frames would otherwise cost minutes).
func animatedFrames(w, h int, lim Limits) int {
	budget := animatedPixelBudget * lim.MaxPixels / max(pixels(w, h), 1)
	return int(min(int64(lim.MaxFrames), max(budget, 2)))
}

// animatedPixelBudget bounds the work of an animated thumbnail, in multiples
// of Limits.MaxPixels.
const animatedPixelBudget = 8

// DecodeMemory estimates the peak bytes Generate needs for src (so a caller
// can bound concurrent decodes with a weighted semaphore): the decoded frame
// at 4 bytes a pixel, the resampling buffers and the output. For animated
// output, frames are decoded one at a time onto one canvas, so it counts the
// canvas, one frame, a saved canvas for "restore to previous" disposal and
// as many output frames as the default Limits allow (Info does not carry the
// frame count), twice: as images and encoded. The
// estimate is an upper bound in the usual cases, not a guarantee.
func DecodeMemory(info Info, req Request) int64 {
	w, h := max(info.Width, 1), max(info.Height, 1)
	src := pixels(w, h)
	if req.Validate() != nil {
		return bytesPerPixel * src
	}
	p := planFor(w, h, req)
	out := pixels(p.outW, p.outH)
	sw, sh := p.region.Dx(), p.region.Dy()
	if info.Format == "jpeg" && !info.Animated {
		r := scaleRect(p.region, jpegDenom(p))
		sw, sh = r.Dx(), r.Dy()
	}
	resampling := resampleMemory(sw, sh, p.outW, p.outH)
	if info.Animated && req.Animated {
		canvas := 2*bytesPerPixel*src + gifBytesPerPixel*src
		n := animatedFrames(w, h, Limits{}.WithDefaults())
		frames := int64(n) * gifBytesPerPixel * out
		return canvas + resampling + 2*frames
	}
	if info.Format == "jpeg" {
		return jpegDecodeMemory(info, p) + resampling + bytesPerPixel*out
	}
	return bytesPerPixel*src + resampling + bytesPerPixel*out
}

// jpegDecodeMemory bounds what jpegscale allocates decoding a JPEG for plan
// p: the planes, padded to whole MCUs (up to 32x16), at 1/denom, and the
// image they are converted into (CMYK and RGB JPEGs) at up to
// jpegBytesPerPixel; for a progressive JPEG also the coefficients of up to
// 4 components, 4 bytes a coefficient (so 4 bytes a pixel), at full size;
// and the decoder's own state (Huffman tables, buffers), under 64 KiB.
func jpegDecodeMemory(info Info, p plan) int64 {
	const jpegBytesPerPixel, coefficientBytes, decoderBytes = 8, 4 * 4, 64 << 10
	d := jpegDenom(p)
	padW, padH := info.Width+31, info.Height+31
	m := decoderBytes + jpegBytesPerPixel*pixels(ceilDiv(padW, d), ceilDiv(padH, d))
	if info.Progressive {
		m += coefficientBytes * pixels(padW, padH)
	}
	return m
}
