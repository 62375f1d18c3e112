package media

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/preview"
)

// URL preview errors. The preview package's errors come back wrapped in
// these, so callers need not import it.
var (
	// ErrPreviewsDisabled: Options.Previews is nil.
	ErrPreviewsDisabled = errors.New("media: url previews are off")
	// ErrPreviewBadURL: not an absolute http(s) URL without userinfo, of
	// at most MaxPreviewURLBytes.
	ErrPreviewBadURL = errors.New("media: url cannot be previewed")
	// ErrPreviewForbidden: the URL or a redirect is on a denied address
	// or domain.
	ErrPreviewForbidden = errors.New("media: url preview refused")
	// ErrPreviewUnavailable: the site could not be reached, failed, was
	// too slow or gave nothing to preview.
	ErrPreviewUnavailable = errors.New("media: url preview site unavailable")
)

const (
	// MaxPreviewURLBytes bounds the url of a preview (longer:
	// ErrPreviewBadURL).
	MaxPreviewURLBytes = 4096
	// previewFailureTTL is how long a URL whose preview failed
	// (forbidden or unavailable) gets that failure again without a fetch.
	previewFailureTTL = time.Minute
	// previewFailures bounds the remembered failures (least recent go).
	previewFailures = 10000
	hourMs          = int64(time.Hour / time.Millisecond)
)

// Preview is the OpenGraph object of the spec's preview_url: og:* strings
// of the page and, when it had an image that could be stored, og:image
// (the mxc:// URI of the image as local media), og:image:type,
// og:image:width and og:image:height (ints; absent when unknown) and
// matrix:image:size (bytes, an int).
type Preview map[string]any

// PreviewsEnabled reports whether the store makes URL previews.
func (s *Store) PreviewsEnabled() bool { return s.previewer.Load().p != nil }

// PreviewURL returns the preview of rawURL for homeserver server as of ts
// (Unix ms; 0, or a time to come: now). Previews are stored in the index
// per server, URL and hour: the hour of ts when one was made then; else
// the current hour's, made now when missing (a past hour never gets a new
// preview: it would not be what the page said then, and a client naming
// many hours would make many fetches). An hour's preview is never served
// for a later hour, nor once expired (Options.PreviewCacheFor): a ts in an
// expired hour gets the current hour's. Concurrent calls for one server, URL and hour make one
// fetch; a failure (ErrPreviewForbidden, ErrPreviewUnavailable) is
// answered again for previewFailureTTL without a fetch. The image is
// stored as server's local media (see previewImage). Safe for concurrent
// use.
func (s *Store) PreviewURL(ctx context.Context, server, rawURL string, ts int64) (Preview, error) {
	if !s.PreviewsEnabled() {
		return nil, ErrPreviewsDisabled
	}
	if err := checkPreviewURL(rawURL); err != nil {
		return nil, err
	}
	now := s.opts.Now()
	if ts <= 0 || ts > now.UnixMilli() {
		ts = now.UnixMilli()
	}
	hour, current := hourOf(ts), hourOf(now.UnixMilli())
	hours := []int64{hour, current}
	if hour == current {
		hours = hours[1:] // the usual request, for now: one lookup
	}
	for _, h := range hours {
		if s.previewExpired(h, now.UnixMilli()) {
			continue // as if GC had removed it already
		}
		rec, err := s.idx.Preview(server, rawURL, h)
		if err == nil {
			return objectOf(rec), nil
		}
		if !errors.Is(err, index.ErrNotFound) {
			return nil, err
		}
	}
	fkey := server + "/" + rawURL
	if err := s.previews.failure(fkey, now); err != nil {
		return nil, err
	}
	rec, err := s.previews.do(ctx, fmt.Sprintf("%s\x00%d", fkey, current), func(ctx context.Context) (index.PreviewRecord, error) {
		return s.makePreview(ctx, server, rawURL, current)
	})
	if err != nil {
		return nil, err
	}
	return objectOf(rec), nil
}

// makePreview fetches rawURL's preview, stores its image and records it
// for hour; the caller leads the flight of (server, rawURL, hour).
func (s *Store) makePreview(ctx context.Context, server, rawURL string, hour int64) (index.PreviewRecord, error) {
	// A flight that ended just before this one began has recorded it.
	if rec, err := s.idx.Preview(server, rawURL, hour); !errors.Is(err, index.ErrNotFound) {
		return rec, err
	}
	p := s.previewer.Load().p
	if p == nil { // turned off since PreviewURL looked
		return index.PreviewRecord{}, ErrPreviewsDisabled
	}
	res, err := p.Preview(ctx, rawURL)
	if err != nil {
		err = previewError(err)
		if !errors.Is(err, ErrPreviewBadURL) && ctx.Err() == nil {
			s.previews.fail(server+"/"+rawURL, err, s.opts.Now())
		}
		return index.PreviewRecord{}, err
	}
	rec := index.PreviewRecord{Fetched: s.opts.Now().UnixMilli(), OG: map[string]string{}}
	for k, v := range res.OG {
		// The image keys are ours to set.
		if !strings.HasPrefix(k, "og:image") && !strings.HasPrefix(k, "matrix:") {
			rec.OG[k] = v
		}
	}
	if res.Image != nil {
		if err := s.previewImage(ctx, p, server, *res.Image, &rec); err != nil {
			return index.PreviewRecord{}, err
		}
	}
	b := s.idx.NewBatch()
	defer b.Close()
	if err := b.PutPreview(server, rawURL, hour, rec); err != nil {
		return index.PreviewRecord{}, err
	}
	if err := s.commitRecords(b); err != nil {
		return index.PreviewRecord{}, err
	}
	return rec, nil
}

// previewError wraps an error of the Previewer in this package's sentinel.
func previewError(err error) error {
	switch {
	case errors.Is(err, preview.ErrBadURL):
		return fmt.Errorf("%w: %v", ErrPreviewBadURL, err)
	case errors.Is(err, preview.ErrForbidden):
		return fmt.Errorf("%w: %v", ErrPreviewForbidden, err)
	default: // ErrUnavailable, and anything the contract does not name
		return fmt.Errorf("%w: %v", ErrPreviewUnavailable, err)
	}
}

// checkPreviewURL refuses what cannot be previewed before any lookup: an
// empty or long URL, one with control characters or invalid UTF-8 (the
// index key separates the URL with 0x00), anything but absolute http(s)
// with a host, userinfo.
func checkPreviewURL(raw string) error {
	bad := func(why string) error { return fmt.Errorf("%w: %s", ErrPreviewBadURL, why) }
	if raw == "" {
		return bad("empty url")
	}
	if len(raw) > MaxPreviewURLBytes {
		return bad(fmt.Sprintf("url longer than %d bytes", MaxPreviewURLBytes))
	}
	if !utf8.ValidString(raw) || strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return bad("url holds control characters or invalid UTF-8")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("url does not parse")
	}
	if sc := strings.ToLower(u.Scheme); sc != "http" && sc != "https" {
		return bad("url is not http or https")
	}
	if u.Host == "" || u.User != nil {
		return bad("url has no host, or has userinfo")
	}
	return nil
}

// hourOf is the start of ms's hour, Unix ms.
func hourOf(ms int64) int64 { return ms - ms%hourMs }

// objectOf is the OpenGraph object of rec.
func objectOf(rec index.PreviewRecord) Preview {
	p := make(Preview, len(rec.OG)+5)
	for k, v := range rec.OG {
		p[k] = v
	}
	if rec.Image == "" {
		return p
	}
	p["og:image"] = rec.Image
	p["og:image:type"] = rec.ImageType
	if rec.ImageWidth > 0 && rec.ImageHeight > 0 {
		p["og:image:width"], p["og:image:height"] = rec.ImageWidth, rec.ImageHeight
	}
	p["matrix:image:size"] = rec.ImageSize
	return p
}
