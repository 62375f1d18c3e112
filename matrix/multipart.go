package matrix

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strings"
)

// The federation media endpoints (GET /_matrix/federation/v1/media/download
// and /thumbnail) answer with multipart/mixed holding exactly two parts: JSON
// metadata (currently always {}), then either the media bytes with their own
// Content-Type and Content-Disposition, or only a Location header naming a
// URL to fetch the bytes from.

// ErrBadMultipart is wrapped by every error that means "this is not a
// well-formed federation media response" (or, for the writers, "these
// arguments would not make one"). I/O errors of the underlying reader or
// writer are returned as they are, not as ErrBadMultipart.
var ErrBadMultipart = errors.New("matrix: bad multipart media response")

// MaxMultipartMetadata bounds the first (JSON metadata) part ReadMultipart
// accepts.
const MaxMultipartMetadata = 64 << 10

// multipartHeadLimit bounds everything ReadMultipart reads before the media
// bytes: preamble, both header blocks and the metadata, plus the 4 KiB
// mime/multipart reads ahead.
const multipartHeadLimit = MaxMultipartMetadata + 64<<10 + 4<<10

// maxBoundaryLength is the RFC 2046 limit.
const maxBoundaryLength = 70

// NewBoundary returns a fresh random boundary: 32 lower-case hex characters,
// which RFC 2046 allows unquoted and which no media body will contain by
// chance.
func NewBoundary() string {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return hex.EncodeToString(b[:])
}

// MultipartContentType returns the Content-Type of a response written with
// boundary: "multipart/mixed; boundary=<boundary>" (quoted if it must be).
func MultipartContentType(boundary string) string {
	return mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": boundary})
}

// WriteMultipart writes a federation media response with the given boundary
// to w, streaming body as its second part. contentType defaults to
// application/octet-stream; contentDisposition is omitted when empty. It
// writes a CRLF before the first boundary, as Synapse does, since some
// parsers need it.
//
// The body must not contain the delimiter "\r\n--"+boundary; use NewBoundary
// rather than a fixed string outside tests. written counts every byte written
// to w, framing included. An invalid boundary or a header value holding a
// control character is refused with ErrBadMultipart before anything is
// written.
func WriteMultipart(w io.Writer, boundary string, contentType, contentDisposition string, body io.Reader) (written int64, err error) {
	if err := checkBoundary(boundary); err != nil {
		return 0, err
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	if err := checkHeaderValue("Content-Type", contentType); err != nil {
		return 0, err
	}
	if err := checkHeaderValue("Content-Disposition", contentDisposition); err != nil {
		return 0, err
	}
	var head strings.Builder
	writeMetadataPart(&head, boundary)
	head.WriteString("Content-Type: " + contentType + "\r\n")
	if contentDisposition != "" {
		head.WriteString("Content-Disposition: " + contentDisposition + "\r\n")
	}
	head.WriteString("\r\n")

	n, err := io.WriteString(w, head.String())
	written += int64(n)
	if err != nil {
		return written, err
	}
	m, err := io.Copy(w, body)
	written += m
	if err != nil {
		return written, err
	}
	n, err = io.WriteString(w, "\r\n--"+boundary+"--\r\n")
	written += int64(n)
	return written, err
}

// WriteMultipartRedirect writes a federation media response whose second
// part holds only a Location header: the caller is to fetch the media from
// location, an absolute http or https URL.
func WriteMultipartRedirect(w io.Writer, boundary, location string) error {
	if err := checkBoundary(boundary); err != nil {
		return err
	}
	if err := checkHeaderValue("Location", location); err != nil {
		return err
	}
	if err := checkLocation(location); err != nil {
		return err
	}
	var b strings.Builder
	writeMetadataPart(&b, boundary)
	b.WriteString("Location: " + location + "\r\n\r\n")
	b.WriteString("\r\n--" + boundary + "--\r\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeMetadataPart writes the leading CRLF, the metadata part and the
// delimiter opening the second part, up to its headers.
func writeMetadataPart(b *strings.Builder, boundary string) {
	b.WriteString("\r\n--" + boundary + "\r\n")
	b.WriteString("Content-Type: application/json\r\n\r\n{}\r\n")
	b.WriteString("--" + boundary + "\r\n")
}

// checkBoundary accepts what RFC 2046 allows: 1 to 70 characters of bchars,
// not ending in a space.
func checkBoundary(b string) error {
	if b == "" || len(b) > maxBoundaryLength || b[len(b)-1] == ' ' {
		return fmt.Errorf("%w: boundary must be 1 to %d characters, not ending in a space", ErrBadMultipart, maxBoundaryLength)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || strings.IndexByte("'()+_,-./:=? ", c) >= 0) {
			return fmt.Errorf("%w: boundary %q has a character outside RFC 2046 bchars", ErrBadMultipart, b)
		}
	}
	return nil
}

// checkHeaderValue refuses control characters (CR and LF above all), which
// would let a value add headers or end the header block.
func checkHeaderValue(name, v string) error {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return fmt.Errorf("%w: %s %q holds a control character", ErrBadMultipart, name, v)
		}
	}
	return nil
}

func checkLocation(location string) error {
	u, err := url.Parse(location)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: Location %q is not an absolute http(s) URL", ErrBadMultipart, location)
	}
	return nil
}

// MediaPart is the second part of a federation media response.
type MediaPart struct {
	ContentType        string // as sent; may be empty
	ContentDisposition string // as sent; may be empty
	// Location, when set, is the absolute http(s) URL to fetch the media
	// from instead; Body is then normally empty.
	Location string
	// Body streams the part's bytes from the response as they arrive. It
	// returns io.EOF at the closing delimiter and an error wrapping both
	// ErrBadMultipart and io.ErrUnexpectedEOF if the response ends first.
	Body io.Reader
}

// ReadMultipart parses a federation media response with the given
// Content-Type header, reading r up to the start of the media bytes. It
// returns the metadata part (valid JSON, at most MaxMultipartMetadata bytes)
// and the media part, whose Body reads on from r: nothing of the media is
// buffered beyond a few KiB, so the caller can copy it to storage as it
// arrives, and must read it before reusing r.
//
// It is lenient in what it accepts: any multipart/* type, a quoted boundary,
// LF-only line endings, no CRLF before the first boundary, whitespace after a
// boundary, a metadata part without a Content-Type, and parts after the second
// (never read). It refuses with ErrBadMultipart a missing or invalid boundary,
// a non-multipart type, fewer than two parts, malformed part headers,
// metadata that is not JSON or not application/json, a Location that is not
// an absolute http(s) URL, and more than about 130 KiB before the media bytes.
// An error of r itself is returned wrapped, not as ErrBadMultipart.
func ReadMultipart(contentType string, r io.Reader) (json.RawMessage, MediaPart, error) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.HasPrefix(mediaType, "multipart/") {
		return nil, MediaPart{}, fmt.Errorf("%w: Content-Type %q is not multipart", ErrBadMultipart, contentType)
	}
	boundary := params["boundary"]
	if boundary == "" || len(boundary) > maxBoundaryLength || boundary[len(boundary)-1] == ' ' {
		return nil, MediaPart{}, fmt.Errorf("%w: Content-Type %q has no valid boundary", ErrBadMultipart, contentType)
	}
	for i := 0; i < len(boundary); i++ {
		if c := boundary[i]; c < ' ' || c > '~' {
			return nil, MediaPart{}, fmt.Errorf("%w: Content-Type %q has no valid boundary", ErrBadMultipart, contentType)
		}
	}

	hr := &multipartHeadReader{r: r, limit: multipartHeadLimit}
	mr := multipart.NewReader(hr, boundary)

	first, err := mr.NextRawPart()
	if err != nil {
		return nil, MediaPart{}, hr.fail("metadata part", err)
	}
	if ct := first.Header.Get("Content-Type"); ct != "" {
		if t, _, err := mime.ParseMediaType(ct); err != nil || t != "application/json" {
			return nil, MediaPart{}, fmt.Errorf("%w: metadata part has Content-Type %q", ErrBadMultipart, ct)
		}
	}
	meta, err := io.ReadAll(io.LimitReader(first, MaxMultipartMetadata+1))
	if err != nil {
		return nil, MediaPart{}, hr.fail("metadata part", err)
	}
	if len(meta) > MaxMultipartMetadata {
		return nil, MediaPart{}, fmt.Errorf("%w: metadata part exceeds %d bytes", ErrBadMultipart, MaxMultipartMetadata)
	}
	if !json.Valid(meta) {
		return nil, MediaPart{}, fmt.Errorf("%w: metadata part is not JSON", ErrBadMultipart)
	}

	second, err := mr.NextRawPart()
	if err != nil {
		return nil, MediaPart{}, hr.fail("media part", err)
	}
	hr.limit = 0 // the media bytes are the caller's to bound
	part := MediaPart{
		ContentType:        second.Header.Get("Content-Type"),
		ContentDisposition: second.Header.Get("Content-Disposition"),
		Location:           second.Header.Get("Location"),
		Body:               &multipartBody{p: second, hr: hr},
	}
	if part.Location != "" {
		if err := checkLocation(part.Location); err != nil {
			return nil, MediaPart{}, err
		}
	}
	return json.RawMessage(meta), part, nil
}

// multipartHeadReader counts what mime/multipart reads, refusing to go past
// limit (when not 0), and remembers an error of the underlying reader so it
// can be told from a malformed response.
type multipartHeadReader struct {
	r     io.Reader
	n     int64
	limit int64
	over  bool  // limit was reached
	err   error // first error of r other than io.EOF
}

func (hr *multipartHeadReader) Read(p []byte) (int, error) {
	if hr.limit > 0 {
		if hr.n >= hr.limit {
			hr.over = true
			return 0, hr.overErr()
		}
		if rest := hr.limit - hr.n; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	n, err := hr.r.Read(p)
	hr.n += int64(n)
	if err != nil && err != io.EOF && hr.err == nil {
		hr.err = err
	}
	return n, err
}

func (hr *multipartHeadReader) overErr() error {
	return fmt.Errorf("%w: more than %d bytes before the media", ErrBadMultipart, hr.limit)
}

// fail turns an error of mime/multipart into ours: the underlying reader's
// error if there was one, else ErrBadMultipart.
func (hr *multipartHeadReader) fail(what string, err error) error {
	if hr.err != nil {
		return fmt.Errorf("read %s: %w", what, hr.err)
	}
	if hr.over {
		return hr.overErr()
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: no %s", ErrBadMultipart, what)
	}
	return fmt.Errorf("%w: %s: %v", ErrBadMultipart, what, err)
}

// multipartBody is MediaPart.Body: the part reader, with a truncated response
// reported as ErrBadMultipart.
type multipartBody struct {
	p  *multipart.Part
	hr *multipartHeadReader
}

func (b *multipartBody) Read(p []byte) (int, error) {
	n, err := b.p.Read(p)
	if err == io.ErrUnexpectedEOF && b.hr.err == nil {
		err = fmt.Errorf("%w: media part ends without a closing delimiter: %w", ErrBadMultipart, io.ErrUnexpectedEOF)
	}
	return n, err
}
