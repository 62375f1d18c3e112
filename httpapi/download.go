package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/thumbgen"
)

const (
	defaultWait = 20 * time.Second
	maxWait     = 60 * time.Second
)

// download: GET /_matrix/client/v1/media/download/{server}/{id}[/{name}]
func (a *API) download(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return a.serveMedia(w, r, rc, false)
}

// downloadLegacy: GET /_matrix/media/v3/download/... (no token; frozen media refused)
func (a *API) downloadLegacy(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return a.serveMedia(w, r, rc, true)
}

// lookup finds the record of the request's media, waiting up to timeout_ms
// for a created ID's content.
func (a *API) lookup(r *http.Request, rc *reqCtx, legacy bool) (media.Record, error) {
	m, err := matrix.NewMXC(rc.param("server"), rc.param("id"))
	if err != nil {
		return media.Record{}, err
	}
	rec, err := a.opts.Store.Stat(m)
	if errors.Is(err, media.ErrNotFound) && !a.local(m.Server) {
		if legacy && !a.legacyMayFetch(r) {
			return rec, err
		}
		rec, err = a.opts.Store.FetchRemote(r.Context(), m)
		if errors.Is(err, media.ErrRemoteDisabled) {
			return rec, errorf(http.StatusNotFound, "M_NOT_FOUND", "Remote media is not available from this server")
		}
	}
	if err != nil {
		return rec, err
	}
	if rec.Quarantined {
		return rec, media.ErrNotFound
	}
	if rec.Pending {
		wait, err := waitParam(r)
		if err != nil {
			return rec, err
		}
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		defer cancel()
		if rec, err = a.opts.Store.Wait(ctx, m); err != nil {
			return rec, err
		}
	}
	// Frozen media is refused on the legacy paths once it has content (a
	// created ID still answers 504 there, as Synapse does).
	if legacy && rec.RequiresAuth {
		return rec, media.ErrNotFound
	}
	return rec, nil
}

func (a *API) serveMedia(w http.ResponseWriter, r *http.Request, rc *reqCtx, legacy bool) error {
	if done, err := a.streamRemote(w, r, rc, legacy); done || err != nil {
		return err
	}
	rec, err := a.lookup(r, rc, legacy)
	if err != nil {
		return err
	}
	body, err := a.opts.Store.OpenMedia(rec)
	if err != nil {
		return err
	}
	defer body.Close()
	name := rec.UploadName
	if n := rc.params.ByName("name"); n != "" {
		name = unescape(n)
	}
	ct := rec.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", contentDisposition(ct, name, false))
	setMediaHeaders(h)
	h.Set("ETag", `"`+rec.Object.String()+`"`)
	modified := time.UnixMilli(rec.Created)
	if isPlainGet(r) {
		// The common case, a whole object with no conditions: stream the
		// chunk files straight to the socket (sendfile).
		h.Set("Accept-Ranges", "bytes")
		h.Set("Content-Length", strconv.FormatInt(body.Size(), 10))
		h.Set("Last-Modified", modified.UTC().Format(http.TimeFormat))
		if r.Method != http.MethodHead {
			if err := body.Check(); err != nil {
				dropMediaHeaders(h)
				return err // damaged from the start: nothing sent yet
			}
		}
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			if _, err := body.WriteTo(w); err != nil {
				abortIfDamaged(err)
				a.log.Warn("download cut short", "media", rec.Server+"/"+rec.MediaID, "err", err)
			}
		}
		return nil
	}
	return serveContent(w, r, modified, body)
}

// legacyMayFetch reports whether a request on the unauthenticated legacy
// paths may fetch remote media: not when it says allow_remote=false, and
// never under the freeze (what a legacy path may serve predates the freeze;
// remote media fetched now does not, and Synapse likewise stops fetching
// for these paths).
func (a *API) legacyMayFetch(r *http.Request) bool {
	return !a.opts.FreezeUnauthenticated && r.URL.Query().Get("allow_remote") != "false"
}

// isPlainGet reports whether r asks for the whole object unconditionally;
// anything else (ranges, validators) goes through http.ServeContent.
func isPlainGet(r *http.Request) bool {
	for _, k := range []string{"Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if r.Header.Get(k) != "" {
			return false
		}
	}
	return true
}

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

// thumbnail: GET /_matrix/client/v1/media/thumbnail/{server}/{id}
func (a *API) thumbnail(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return a.serveThumbnail(w, r, rc, false)
}

// thumbnailLegacy: GET /_matrix/media/v3/thumbnail/{server}/{id}
func (a *API) thumbnailLegacy(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return a.serveThumbnail(w, r, rc, true)
}

// serveThumbnail answers a thumbnail: made on first request (once, however
// many ask at the same moment), then served from the store.
func (a *API) serveThumbnail(w http.ResponseWriter, r *http.Request, rc *reqCtx, legacy bool) error {
	req, err := thumbnailRequest(r)
	if err != nil {
		return err
	}
	rec, err := a.lookup(r, rc, legacy)
	if err != nil {
		return err
	}
	body, tr, err := a.opts.Store.Thumbnail(r.Context(), rec, req)
	if err != nil {
		return err
	}
	defer body.Close()
	h := w.Header()
	h.Set("Content-Type", tr.ContentType)
	h.Set("Content-Disposition", contentDisposition(tr.ContentType, "", true))
	setMediaHeaders(h)
	h.Set("ETag", `"`+tr.Object.String()+`"`)
	return serveContent(w, r, time.UnixMilli(rec.Created), body)
}

// thumbnailRequest reads width, height, method and animated.
func thumbnailRequest(r *http.Request) (thumbgen.Request, error) {
	q := r.URL.Query()
	req := thumbgen.Request{Method: q.Get("method"), Animated: q.Get("animated") == "true"}
	for _, p := range []string{"width", "height"} {
		if !q.Has(p) {
			return req, errorf(http.StatusBadRequest, "M_MISSING_PARAM", "Missing %s", p)
		}
	}
	var err error
	if req.Width, err = strconv.Atoi(q.Get("width")); err != nil || req.Width <= 0 {
		return req, errorf(http.StatusBadRequest, "M_INVALID_PARAM", "width must be a positive integer")
	}
	if req.Height, err = strconv.Atoi(q.Get("height")); err != nil || req.Height <= 0 {
		return req, errorf(http.StatusBadRequest, "M_INVALID_PARAM", "height must be a positive integer")
	}
	if req.Method == "" {
		req.Method = "scale"
	}
	if req.Method != "crop" && req.Method != "scale" {
		return req, errorf(http.StatusBadRequest, "M_INVALID_PARAM", "method must be crop or scale")
	}
	if v := q.Get("animated"); v != "" && v != "true" && v != "false" {
		return req, errorf(http.StatusBadRequest, "M_INVALID_PARAM", "animated must be true or false")
	}
	return req, nil
}

// streamRemote serves another server's media that is not cached yet while
// it is being fetched and stored: the client gets the first bytes as soon
// as they arrive. done reports that the answer was written.
func (a *API) streamRemote(w http.ResponseWriter, r *http.Request, rc *reqCtx, legacy bool) (done bool, err error) {
	m, err := matrix.NewMXC(rc.param("server"), rc.param("id"))
	if err != nil || a.local(m.Server) || (legacy && !a.legacyMayFetch(r)) ||
		r.Method != http.MethodGet || !isPlainGet(r) {
		return false, nil // ranges and validators go through the store and ServeContent
	}
	if _, err := a.opts.Store.Stat(m); !errors.Is(err, media.ErrNotFound) {
		return false, nil // cached (or another error lookup reports)
	}
	name := unescape(rc.params.ByName("name"))
	_, streamed, err := a.opts.Store.FetchRemoteTo(r.Context(), m, func(rm media.RemoteMedia) io.Writer {
		h := w.Header()
		h.Set("Content-Type", rm.ContentType)
		n := rm.UploadName
		if name != "" {
			n = name
		}
		h.Set("Content-Disposition", contentDisposition(rm.ContentType, n, false))
		setMediaHeaders(h)
		if rm.Size >= 0 {
			h.Set("Content-Length", strconv.FormatInt(rm.Size, 10))
		}
		w.WriteHeader(http.StatusOK)
		return flushWriter{w}
	})
	if streamed {
		if err != nil {
			// Headers are gone: all we can do is cut the response short.
			a.log.Warn("remote download failed while streaming", "media", m.String(), "err", err)
			panic(http.ErrAbortHandler)
		}
		return true, nil
	}
	if errors.Is(err, media.ErrRemoteDisabled) {
		return true, errorf(http.StatusNotFound, "M_NOT_FOUND", "Remote media is not available from this server")
	}
	if err != nil {
		return true, err
	}
	return false, nil // another request fetched it: serve it from the store
}

// flushWriter sends each piece to the client at once.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	http.NewResponseController(f.w).Flush()
	return n, err
}

// waitParam reads timeout_ms: how long to wait for a created ID's content
// (default 20 s, at most 60 s).
func waitParam(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("timeout_ms")
	if v == "" {
		return defaultWait, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 {
		return 0, errorf(http.StatusBadRequest, "M_INVALID_PARAM", "timeout_ms must be a non-negative integer")
	}
	return min(time.Duration(ms)*time.Millisecond, maxWait), nil
}
