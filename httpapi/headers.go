package httpapi

import (
	"net/http"
	"strings"
)

// setMediaHeaders adds what every media answer carries.
func setMediaHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
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
