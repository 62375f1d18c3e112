package thumbgen

import (
	"bytes"
	"cmp"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"slices"

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
func Generate(src []byte, req Request, lim Limits) (Result, error) {
	o := GenerateAll(src, []Request{req}, lim)[0]
	return o.Result, o.Err
}

// Outcome is what GenerateAll made of one request: a Result or an error.
type Outcome struct {
	Result Result
	Err    error
}

// GenerateAll makes a thumbnail of src for each of reqs, as Generate would,
// from one header read and one decode: a still image is decoded once, at the
// scale the most demanding request needs, and every still thumbnail is made
// from it, largest first. A progressive JPEG is the exception: it is decoded
// once per scale its requests need, because its smaller scales skip most of
// the work (at 1/8 every AC scan), so each of its outputs is Generate's. An output is byte-identical to Generate's for the
// same request when that request alone would have picked the same scale
// (always, except for a JPEG whose requests differ in scale); otherwise it is
// resampled from a larger decode. Animated GIF output (of a GIF or WebP) keeps its own path.
// Outcomes are in the order of reqs; an invalid request fails alone, a source
// that cannot be read fails them all. GenerateAll never panics; it does not
// keep src, and Data may alias src.
func GenerateAll(src []byte, reqs []Request, lim Limits) []Outcome {
	out := make([]Outcome, len(reqs))
	GenerateEach(src, reqs, lim, nil, func(i int, o Outcome) { out[i] = o })
	return out
}

// GenerateEach is GenerateAll handing each outcome to emit as soon as it is
// made, so a caller can store and serve one size while the next is being
// resampled. emit is called exactly once for each request, from the
// calling goroutine. When several still thumbnails are left to make from
// the shared decode, next (if not nil) chooses which comes next from their
// request indexes (it returns one of them, for example the one a client is
// waiting for); by default the largest output comes first.
func GenerateEach(src []byte, reqs []Request, lim Limits, next func(left []int) int, emit func(i int, o Outcome)) {
	out := make([]Outcome, len(reqs))
	emitted := make([]bool, len(reqs))
	send := func(i int) {
		if !emitted[i] {
			emitted[i] = true
			emit(i, out[i])
		}
	}
	defer func() {
		if p := recover(); p != nil {
			failUnfinished(out, fmt.Errorf("%w: thumbnail panicked: %v", ErrCorrupt, p))
		}
		for i := range out {
			send(i)
		}
	}()
	generateEach(src, reqs, lim, out, next, send)
}

// generateEach is GenerateEach's work, writing outcomes into out and
// calling send(i) once out[i] is final (send ignores repeats).
func generateEach(src []byte, reqs []Request, lim Limits, out []Outcome, next func(left []int) int, send func(i int)) {
	lim = lim.WithDefaults()
	frames := 2
	for i, req := range reqs {
		if out[i].Err = req.Validate(); out[i].Err == nil && req.Animated {
			frames = max(frames, lim.MaxFrames)
		}
	}
	h, err := sniff(src, lim, frames)
	if err != nil {
		failUnfinished(out, err)
		return
	}
	var stills []still
	for i, req := range reqs {
		if out[i].Err != nil {
			continue
		}
		if res, ok := passThrough(src, &h, req); ok {
			out[i].Result = res
			continue
		}
		s := still{i: i, p: planFor(h.Width, h.Height, req), small: tooSmall(&h, req)}
		if s.small {
			s.p = plan{region: image.Rect(0, 0, h.Width, h.Height), outW: h.Width, outH: h.Height}
		}
		if req.Animated && h.Animated && (h.Format == "gif" || h.Format == "webp") {
			out[i].Result, out[i].Err = animate(&h, s.p, animatedFrames(h.Width, h.Height, lim))
			continue
		}
		stills = append(stills, s)
	}
	for i := range out {
		if out[i].Err != nil || out[i].Result.Data != nil {
			send(i) // decided without a decode
		}
	}
	makeStills(src, &h, stills, out, next, send)
}

// failUnfinished sets err on every outcome that has neither a result nor
// an error yet.
func failUnfinished(out []Outcome, err error) {
	for i := range out {
		if out[i].Err == nil && out[i].Result.Data == nil {
			out[i].Err = err
		}
	}
}

// passThrough returns src itself when it already answers req: a source that
// cannot cover the request without upscaling (for scale, one side no larger
// than asked; for crop, both), in a format served as it is (JPEG; PNG and
// GIF unless their animation would be shown unasked).
func passThrough(src []byte, h *header, req Request) (Result, bool) {
	res := Result{Data: src, Width: h.Width, Height: h.Height}
	switch {
	case !tooSmall(h, req):
		return Result{}, false
	case h.Format == "jpeg":
		res.ContentType = contentTypeJPEG
	case h.Format == "png" && (!h.Animated || req.Animated):
		// An APNG comes back as it is only when animation is wanted.
		res.ContentType = contentTypePNG
	case h.Format == "gif" && (!h.Animated || req.Animated):
		res.ContentType = contentTypeGIF
	default:
		return Result{}, false
	}
	return res, true
}

// tooSmall reports whether the source cannot cover req without upscaling:
// for scale, one side no larger than asked; for crop, both.
func tooSmall(h *header, req Request) bool {
	if req.Method == Crop {
		return h.Width <= req.Width && h.Height <= req.Height
	}
	return h.Width <= req.Width || h.Height <= req.Height
}

// still is one still thumbnail of GenerateAll: the index of its request,
// its plan, and whether the source is returned at its own size.
type still struct {
	i     int
	p     plan
	small bool
}

// makeStills makes stills into out, calling send as each is done: from one
// decode at the scale the most demanding needs, or, for a progressive JPEG,
// from one decode per scale, the group of the size next chooses first.
func makeStills(src []byte, h *header, stills []still, out []Outcome, next func(left []int) int, send func(i int)) {
	slices.SortStableFunc(stills, func(a, b still) int {
		return cmp.Compare(pixels(b.p.outW, b.p.outH), pixels(a.p.outW, a.p.outH))
	})
	if len(stills) == 0 {
		return
	}
	if h.Format != "jpeg" || !h.Progressive {
		plans := make([]plan, len(stills))
		for k, s := range stills {
			plans[k] = s.p
		}
		makeGroup(src, h, stills, sharedDenom(h.Format, plans), out, next, send)
		return
	}
	// A progressive JPEG decodes far faster at 1/8 (its AC scans are
	// skipped): one decode per scale, the next wanted size's first.
	for len(stills) > 0 {
		k := 0
		if next != nil && len(stills) > 1 {
			k = pickStill(stills, next)
		}
		denom := jpegDenom(stills[k].p)
		var group, rest []still
		for _, s := range stills {
			if jpegDenom(s.p) == denom {
				group = append(group, s)
			} else {
				rest = append(rest, s)
			}
		}
		makeGroup(src, h, group, denom, out, next, send)
		stills = rest
	}
}

// jpegDecodes returns the scales a JPEG is decoded at to make plans: one
// shared scale, or for a progressive JPEG each scale a plan needs.
func jpegDecodes(progressive bool, plans []plan) []int {
	if !progressive {
		return []int{sharedDenom("jpeg", plans)}
	}
	var ds []int
	for _, p := range plans {
		if d := jpegDenom(p); !slices.Contains(ds, d) {
			ds = append(ds, d)
		}
	}
	return ds
}

// makeGroup decodes src once, at scale 1/denom, and makes each of stills
// from it into out, in the order next chooses (by default the order of
// stills), calling send as each is done.
func makeGroup(src []byte, h *header, stills []still, denom int, out []Outcome, next func(left []int) int, send func(i int)) {
	img, err := decodeStill(src, h, denom)
	if err != nil {
		for _, s := range stills {
			out[s.i].Err = err
			send(s.i)
		}
		return
	}
	for len(stills) > 0 {
		k := 0
		if next != nil && len(stills) > 1 {
			k = pickStill(stills, next)
		}
		s := stills[k]
		stills = slices.Delete(stills, k, k+1)
		sr := scaleRect(storedRect(h.orientation, s.p.region, h.storedW, h.storedH), denom).Add(img.Bounds().Min)
		dw, dh := s.p.outW, s.p.outH
		if h.orientation >= 5 {
			dw, dh = dh, dw
		}
		m := reorient(h.orientation, resample(img, sr, dw, dh))
		asPNG := s.small || h.Format == "png" || h.Format == "gif" || (h.Format != "jpeg" && !m.Opaque())
		out[s.i].Result, out[s.i].Err = encodeStill(m, asPNG)
		send(s.i)
	}
}

// pickStill returns the position in stills of the request next chooses
// (the first, if next names none of them).
func pickStill(stills []still, next func(left []int) int) int {
	left := make([]int, len(stills))
	for k, s := range stills {
		left[k] = s.i
	}
	want := next(left)
	for k, s := range stills {
		if s.i == want {
			return k
		}
	}
	return 0
}

// sharedDenom is the scale, of 8, 4, 2 and 1, at which one decode serves
// every plan: the smallest of the JPEG scales each needs (jpegDenom), and
// 1 for other formats.
func sharedDenom(format string, plans []plan) int {
	if format != "jpeg" {
		return 1
	}
	denom := 8
	for _, p := range plans {
		denom = min(denom, jpegDenom(p))
	}
	return denom
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
		if !h.Animated {
			m, err = webp.Decode(r)
			break
		}
		err = composeWebP(&h.webp, 1, func(canvas *image.RGBA, _ webpFrame) error {
			m = canvas
			return nil
		})
		if err != nil {
			return nil, err
		}
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

// animate makes an animated GIF thumbnail of the first maxFrames frames of
// the animated GIF or WebP h. Each output frame is the whole composited
// canvas, resampled and mapped without dithering to the source frame's
// palette (for WebP, which has none, to palette.Plan9).
func animate(h *header, p plan, maxFrames int) (Result, error) {
	var g gif.GIF
	add := func(canvas *image.RGBA, delay int, pal color.Palette) error {
		m := resample(canvas, p.region, p.outW, p.outH)
		opaque := m.Opaque()
		g.Image = append(g.Image, newQuantizer(pal, !opaque).quantize(m))
		g.Delay = append(g.Delay, delay)
		// Each frame replaces the whole picture: with transparency in it,
		// the previous frame must be cleared first.
		disposal := byte(gif.DisposalNone)
		if !opaque {
			disposal = gif.DisposalBackground
		}
		g.Disposal = append(g.Disposal, disposal)
		return nil
	}
	var err error
	if h.Format == "webp" {
		g.LoopCount = h.webp.loopCount
		err = composeWebP(&h.webp, maxFrames, func(canvas *image.RGBA, f webpFrame) error {
			return add(canvas, (f.duration+5)/10, palette.Plan9)
		})
	} else {
		g.LoopCount = h.gif.loopCount
		err = composeGIF(&h.gif, h.storedW, h.storedH, maxFrames, func(canvas *image.RGBA, f gifFrame, pal color.Palette) error {
			return add(canvas, f.delay, pal)
		})
	}
	if err != nil {
		return Result{}, err
	}
	if len(g.Image) == 0 {
		return Result{}, fmt.Errorf("%w: %s: no frames", ErrCorrupt, h.Format)
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
	return DecodeMemoryAll(info, []Request{req})
}

// DecodeMemoryAll is DecodeMemory for GenerateAll: one decode, at the scale
// GenerateAll picks, plus the resampling buffers and output of every still
// request (all counted, though GenerateAll holds one request's buffers at a
// time), plus DecodeMemory of each animated one. For one request it is
// DecodeMemory.
func DecodeMemoryAll(info Info, reqs []Request) int64 {
	w, h := max(info.Width, 1), max(info.Height, 1)
	var (
		total int64
		plans []plan
	)
	for _, req := range reqs {
		switch {
		case req.Validate() != nil:
			total += bytesPerPixel * pixels(w, h)
		case info.Animated && req.Animated:
			total += animatedMemory(info, planFor(w, h, req))
		default:
			plans = append(plans, planFor(w, h, req))
		}
	}
	if len(plans) == 0 {
		return total
	}
	denom := 1
	if !info.Animated {
		denom = sharedDenom(info.Format, plans)
	}
	encoder := int64(pngEncoderBytes)
	if info.Format == "jpeg" {
		for _, d := range jpegDecodes(info.Progressive, plans) {
			total += jpegDecodeMemory(info, d)
		}
		encoder = jpegEncoderBytes
	} else {
		total += decoderBytes + bytesPerPixel*pixels(w, h)
		if info.Format == "webp" && info.Animated {
			total += bytesPerPixel * pixels(w, h) // the first frame, decoded apart from the canvas
		}
	}
	for _, p := range plans {
		r := scaleRect(p.region, denom)
		out := bytesPerPixel * pixels(p.outW, p.outH)
		// The resampled image, then its reoriented copy and the growing
		// encoded buffer, each at most as large.
		total += resampleMemory(r.Dx(), r.Dy(), p.outW, p.outH) + 2*out + encoder
	}
	return total
}

// What decoders and encoders allocate beyond pixels, measured on Go 1.26:
// image/png's decoder (zlib, rows) about 65 KiB; its encoder (a flate
// compressor) 1.25 MiB; image/jpeg's encoder under 8 KiB.
const (
	decoderBytes     = 128 << 10
	pngEncoderBytes  = 3 << 19
	jpegEncoderBytes = 16 << 10
)

// animatedMemory is DecodeMemory of an animated GIF thumbnail of plan p:
// the canvas, a saved canvas (for WebP, the decoded frame) and one frame, the resampling buffers, and the
// output frames twice (as images and encoded).
func animatedMemory(info Info, p plan) int64 {
	w, h := max(info.Width, 1), max(info.Height, 1)
	src := pixels(w, h)
	canvas := 2*bytesPerPixel*src + gifBytesPerPixel*src
	n := animatedFrames(w, h, Limits{}.WithDefaults())
	frames := int64(n) * gifBytesPerPixel * pixels(p.outW, p.outH)
	return canvas + resampleMemory(p.region.Dx(), p.region.Dy(), p.outW, p.outH) + 2*frames
}

// jpegDecodeMemory bounds what jpegscale allocates decoding a JPEG at
// 1/denom: the planes, padded to whole MCUs (up to 32x16), at 1/denom, and
// the image they are converted into (CMYK and RGB JPEGs) at up to
// jpegBytesPerPixel; for a progressive JPEG also the coefficients of up to
// 4 components, 2 bytes a coefficient (so 2 bytes a pixel), at full size,
// or at 1/8 only the DC term of each 8x8 block;
// and the decoder's own state (Huffman tables, buffers), under decoderBytes.
func jpegDecodeMemory(info Info, d int) int64 {
	const jpegBytesPerPixel, coefficientBytes = 8, 4 * 2
	padW, padH := info.Width+31, info.Height+31
	m := decoderBytes + jpegBytesPerPixel*pixels(ceilDiv(padW, d), ceilDiv(padH, d))
	if info.Progressive && d == 8 {
		m += coefficientBytes * pixels(ceilDiv(padW, 8), ceilDiv(padH, 8))
	} else if info.Progressive {
		m += coefficientBytes * pixels(padW, padH)
	}
	return m
}
