package preview

import (
	"bytes"
	"io"
	"mime"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html/charset"
)

// The declarations a document makes of its own character set, looked for
// in its first prescanBytes (Synapse's patterns: a <meta> naming a charset,
// http-equiv included, and the XML declaration's encoding).
var (
	metaCharset = regexp.MustCompile(`(?i)<\s*meta[^>]*charset\s*=\s*"?([a-z0-9_-]+)"?`)
	xmlEncoding = regexp.MustCompile(`(?i)^\s*<\s*\?\s*xml[^>]*encoding\s*=\s*["']([a-z0-9_-]+)["']`)
	// headerCharset finds the charset of a Content-Type that does not
	// parse (charset="ascii; with its quote unclosed, ...).
	headerCharset = regexp.MustCompile(`(?i);\s*charset\s*=\s*"?([^";\s]+)`)
)

const prescanBytes = 1024

// decodeHTML returns a reader of body as UTF-8. A byte order mark decides;
// else, as Synapse does, the first character set that fits of: what the
// document declares (<meta>, then the XML declaration), what contentType
// declares, UTF-8, windows-1252. An unknown name is skipped, and UTF-8
// fits only a body that is valid UTF-8, so a page that lies about being
// UTF-8 is read as windows-1252. The document's own declaration beats the
// header (HTML says the reverse; Synapse, and the pages it was tuned on,
// this way).
func decodeHTML(body []byte, contentType string) io.Reader {
	if _, name, certain := charset.DetermineEncoding(body[:min(len(body), 4)], ""); certain {
		// A BOM. charset.NewReader decodes by it but leaves a UTF-8 one in.
		if name == "utf-8" {
			return bytes.NewReader(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))
		}
		r, err := charset.NewReader(bytes.NewReader(body), "")
		if err == nil {
			return r
		}
	}
	for _, label := range charsetCandidates(body, contentType) {
		e, name := charset.Lookup(label)
		switch {
		case e == nil:
			continue
		case name == "utf-8":
			if !utf8.Valid(body) {
				continue
			}
			return bytes.NewReader(body)
		}
		return e.NewDecoder().Reader(bytes.NewReader(body))
	}
	return bytes.NewReader(body) // unreachable: windows-1252 is known
}

// charsetCandidates lists the character set names to try, in order.
func charsetCandidates(body []byte, contentType string) []string {
	head := body[:min(len(body), prescanBytes)]
	var labels []string
	for _, re := range []*regexp.Regexp{metaCharset, xmlEncoding} {
		if m := re.FindSubmatch(head); m != nil {
			labels = append(labels, metaLabel(string(m[1])))
		}
	}
	if _, params, err := mime.ParseMediaType(contentType); err == nil && params["charset"] != "" {
		labels = append(labels, params["charset"])
	} else if m := headerCharset.FindStringSubmatch(contentType); err != nil && m != nil {
		labels = append(labels, m[1]) // a malformed header: read as Synapse does
	}
	return append(labels, "utf-8", "windows-1252")
}

// metaLabel is the charset a document means by label: a document read
// byte by byte to find its declaration is not UTF-16, so UTF-16 there
// means UTF-8 (the HTML standard's rule).
func metaLabel(label string) string {
	if strings.HasPrefix(strings.ToLower(label), "utf-16") {
		return "utf-8"
	}
	return label
}
