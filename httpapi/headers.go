package httpapi

import (
	"net/http"
	"strings"
)

// mediaHeaders is what every media answer carries.
var mediaHeaders = newFixedHeaders(
	"Content-Security-Policy", "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';",
	"Cross-Origin-Resource-Policy", "cross-origin",
	"X-Content-Type-Options", "nosniff",
	"Cache-Control", "private, max-age=31536000, immutable",
)

// setMediaHeaders adds what every media answer carries.
func setMediaHeaders(h http.Header) { mediaHeaders.set(h) }

// fixedHeaders are header fields whose values never change, set on every
// answer of a kind without canonicalising a key or allocating a value.
type fixedHeaders []struct {
	key   string
	value []string
}

// newFixedHeaders takes pairs of key and value.
func newFixedHeaders(kv ...string) fixedHeaders {
	f := make(fixedHeaders, len(kv)/2)
	for i := range f {
		f[i].key, f[i].value = http.CanonicalHeaderKey(kv[2*i]), []string{kv[2*i+1]}
	}
	return f
}

// set sets the fields in h. The value slices are shared by all answers,
// which is safe: net/http only reads them, and Set or Add on one of these
// keys replaces the slice or appends to a full one (a copy).
func (f fixedHeaders) set(h http.Header) {
	for _, kv := range f {
		h[kv.key] = kv.value
	}
}

// inlineTypes may be shown in a browser; everything else is a download.
var inlineTypes = map[string]bool{}

func init() {
	for _, t := range strings.Fields(`text/css text/plain text/csv application/json application/ld+json
		image/jpeg image/gif image/png image/apng image/webp image/avif video/mp4 video/webm video/ogg
		video/quicktime audio/mp4 audio/webm audio/aac audio/mpeg audio/ogg audio/wave audio/wav audio/x-wav
		audio/x-pn-wav audio/flac audio/x-flac`) {
		inlineTypes[t] = true
	}
}

// contentDisposition is inline for the allowlisted types (or always, for
// thumbnails) and attachment otherwise, with the file name as a token or
// in RFC 5987 form.
func contentDisposition(contentType, name string, thumbnail bool) string {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	disp := "attachment"
	if thumbnail || inlineTypes[mt] {
		disp = "inline"
	}
	if name == "" {
		return disp
	}
	if isToken(name) {
		return disp + "; filename=" + name
	}
	return disp + "; filename*=utf-8''" + encodeRFC5987(name)
}

// isToken reports whether s is an RFC 7230 token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

// encodeRFC5987 percent-encodes everything but attr-char (never '+' for space).
func encodeRFC5987(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
