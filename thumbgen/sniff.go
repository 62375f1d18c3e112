package thumbgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/png"
	"math"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"

	"github.com/mxcas/mxcas/thumbgen/jpegscale"
)

// header is what Sniff learns, plus what Generate needs beyond Info.
type header struct {
	Info
	storedW, storedH int        // dimensions as stored, before EXIF orientation
	orientation      int        // EXIF orientation 1..8 (JPEG only; 1 otherwise)
	gif              gifLayout  // GIF only
	webp             webpLayout // animated WebP only
}

// Sniff reads the header of src (never trusting a declared type) and returns
// its Info without decoding pixels. An unknown format is ErrUnsupported; a
// source over lim.MaxPixels or lim.MaxBytes is ErrTooLarge, with the Info
// still filled when the header could be read. Sniff never panics.
func Sniff(src []byte, lim Limits) (info Info, err error) {
	defer func() {
		if p := recover(); p != nil {
			info, err = Info{}, fmt.Errorf("%w: sniff panicked: %v", ErrCorrupt, p)
		}
	}()
	h, err := sniff(src, lim.WithDefaults(), 2)
	return h.Info, err
}

// formatOf names the format from the magic bytes at the start of src.
func formatOf(src []byte) string {
	switch {
	case bytes.HasPrefix(src, []byte("\xff\xd8\xff")):
		return "jpeg"
	case bytes.HasPrefix(src, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(src, []byte("GIF87a")), bytes.HasPrefix(src, []byte("GIF89a")):
		return "gif"
	case len(src) >= 12 && string(src[:4]) == "RIFF" && string(src[8:12]) == "WEBP":
		return "webp"
	case bytes.HasPrefix(src, []byte("BM")):
		return "bmp"
	case bytes.HasPrefix(src, []byte("II*\x00")), bytes.HasPrefix(src, []byte("MM\x00*")):
		return "tiff"
	}
	return ""
}

// sniff reads the header of src. For a GIF or an animated WebP it records
// the layout of up to gifFrames frames (at least 2, to tell whether a GIF is
// animated).
func sniff(src []byte, lim Limits, gifFrames int) (header, error) {
	h := header{orientation: 1}
	h.Format = formatOf(src)
	if h.Format == "" {
		return h, ErrUnsupported
	}
	var (
		cfg image.Config
		err error
	)
	r := bytes.NewReader(src)
	switch h.Format {
	case "jpeg":
		var jh jpegscale.Header
		jh, err = jpegscale.ReadHeader(r)
		cfg, h.Progressive = jh.Config, jh.Progressive
		h.orientation = jpegOrientation(src)
	case "png":
		cfg, err = png.DecodeConfig(r)
		h.Animated = isAPNG(src)
	case "gif":
		cfg, err = gif.DecodeConfig(r)
		if err == nil {
			h.gif, err = scanGIF(src, gifFrames)
			h.Animated = h.gif.frameCount > 1
		}
	case "webp":
		if isAnimatedWebP(src) {
			h.webp, err = scanWebP(src, gifFrames)
			cfg.Width, cfg.Height = h.webp.canvasW, h.webp.canvasH
			h.Animated = true
		} else {
			cfg, err = webp.DecodeConfig(r)
		}
	case "bmp":
		cfg, err = bmp.DecodeConfig(r)
	case "tiff":
		cfg, err = tiff.DecodeConfig(r)
	}
	if err != nil {
		return h, decodeError(h.Format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return h, fmt.Errorf("%w: %s is %dx%d", ErrCorrupt, h.Format, cfg.Width, cfg.Height)
	}
	h.storedW, h.storedH = cfg.Width, cfg.Height
	h.Width, h.Height = cfg.Width, cfg.Height
	if h.orientation >= 5 {
		h.Width, h.Height = h.Height, h.Width
	}
	if px := pixels(h.Width, h.Height); px > lim.MaxPixels {
		return h, fmt.Errorf("%w: %s is %dx%d, over %d pixels", ErrTooLarge, h.Format, h.Width, h.Height, lim.MaxPixels)
	}
	if int64(len(src)) > lim.MaxBytes {
		return h, fmt.Errorf("%w: %d bytes, over %d", ErrTooLarge, len(src), lim.MaxBytes)
	}
	return h, nil
}

// pixels is w*h, saturating at math.MaxInt64.
func pixels(w, h int) int64 {
	if w <= 0 || h <= 0 {
		return 0
	}
	if int64(w) > math.MaxInt64/int64(h) {
		return math.MaxInt64
	}
	return int64(w) * int64(h)
}

// decodeError wraps a decoder's error: ErrUnsupported for a variant the
// decoder does not implement, ErrCorrupt for anything else.
func decodeError(format string, err error) error {
	var (
		jpegUnsupported jpegscale.UnsupportedError
		pngUnsupported  png.UnsupportedError
		tiffUnsupported tiff.UnsupportedError
	)
	switch {
	case errors.As(err, &jpegUnsupported), errors.As(err, &pngUnsupported),
		errors.As(err, &tiffUnsupported), errors.Is(err, bmp.ErrUnsupported):
		return fmt.Errorf("%s: %w: %w", format, ErrUnsupported, err)
	}
	return fmt.Errorf("%s: %w: %w", format, ErrCorrupt, err)
}

// jpegOrientation returns the EXIF orientation (1..8) of a JPEG, or 1 when
// there is none or it cannot be read. It looks only at the APPn segments
// before the first frame or scan and reads at most one IFD.
func jpegOrientation(src []byte) int {
	p := 2 // after SOI
	for segments := 0; segments < 64 && p+4 <= len(src); segments++ {
		if src[p] != 0xff {
			return 1
		}
		marker := src[p+1]
		if marker == 0xff { // fill byte
			p++
			continue
		}
		if marker == 0xd8 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7) {
			p += 2
			continue
		}
		if marker == 0xda || (marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc) {
			return 1 // start of scan or of frame: the EXIF segment comes before
		}
		n := int(binary.BigEndian.Uint16(src[p+2:]))
		if n < 2 || p+2+n > len(src) {
			return 1
		}
		seg := src[p+4 : p+2+n]
		if marker == 0xe1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return exifOrientation(seg[6:])
		}
		p += 2 + n
	}
	return 1
}

// exifOrientation reads tag 0x0112 from IFD0 of the TIFF structure in b.
func exifOrientation(b []byte) int {
	if len(b) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(b[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 1
	}
	off := int64(bo.Uint32(b[4:]))
	if off < 8 || off+2 > int64(len(b)) {
		return 1
	}
	n := int64(bo.Uint16(b[off:]))
	ifd := b[off+2:]
	for i := int64(0); i < n && i*12+12 <= int64(len(ifd)); i++ {
		e := ifd[i*12 : i*12+12]
		if bo.Uint16(e) != 0x0112 {
			continue
		}
		if bo.Uint16(e[2:]) != 3 { // SHORT
			return 1
		}
		if o := int(bo.Uint16(e[8:])); o >= 1 && o <= 8 {
			return o
		}
		return 1
	}
	return 1
}

// isAPNG reports whether a PNG has an animation control chunk (acTL) before
// its first IDAT: an animated PNG, which image/png decodes as its default
// (still) image.
func isAPNG(src []byte) bool {
	p := 8 // signature
	for p+8 <= len(src) {
		n := int(uint32(src[p])<<24 | uint32(src[p+1])<<16 | uint32(src[p+2])<<8 | uint32(src[p+3]))
		typ := string(src[p+4 : p+8])
		switch typ {
		case "acTL":
			return true
		case "IDAT", "IEND":
			return false
		}
		if n < 0 || n > len(src) {
			return false
		}
		p += 12 + n
	}
	return false
}
