package preview

import (
	"encoding/base64"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// dataImage decodes a data: URL that holds an image (an <img> or og:image
// inlined in a page, which Synapse previews too): its declared type must
// be image/* and its bytes must sniff as an image. ok is false for
// anything else, including other URLs.
func dataImage(raw string) (ref ImageRef, ok bool) {
	rest, found := cutPrefixFold(strings.TrimSpace(raw), "data:")
	if !found {
		return ImageRef{}, false
	}
	meta, payload, found := strings.Cut(rest, ",")
	if !found {
		return ImageRef{}, false
	}
	meta, isBase64 := strings.CutSuffix(meta, ";base64")
	mt, _, err := mime.ParseMediaType(meta)
	if err != nil || !isImage(mt) {
		return ImageRef{}, false
	}
	var body []byte
	if isBase64 {
		payload = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
				return -1
			}
			return r
		}, payload)
		body, err = base64.StdEncoding.DecodeString(payload)
		if err != nil {
			body, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(payload, "="))
		}
	} else {
		var s string
		s, err = url.PathUnescape(payload)
		body = []byte(s)
	}
	if err != nil || len(body) == 0 || !isImage(mediaType(http.DetectContentType(body))) {
		return ImageRef{}, false
	}
	return ImageRef{Body: body, ContentType: mt}, true
}

// cutPrefixFold is strings.CutPrefix, ignoring the case of ASCII letters.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}
