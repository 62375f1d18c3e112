package httpapi

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// download: GET /_matrix/client/v1/media/download/{server}/{id}[/{name}]
func (a *API) download(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return a.serveMedia(w, r, rc, false)
}

// downloadLegacy: GET /_matrix/media/v3/download/... (no token; frozen media refused)
func (a *API) downloadLegacy(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return a.serveMedia(w, r, rc, true)
}

// readOptions says who reads (the client API, or its unauthenticated
// legacy paths, which alone know allow_remote) and how long to wait for a
// created ID's content; media decides what the read gets.
func readOptions(r *http.Request, legacy bool) (media.ReadOptions, error) {
	wait, err := waitParam(r)
	if err != nil {
		return media.ReadOptions{}, err
	}
	o := media.ReadOptions{Path: media.ClientRead, Wait: wait}
	if legacy {
		o.Path = media.LegacyRead
		o.NoRemote = r.URL.Query().Get("allow_remote") == "false"
	}
	return o, nil
}

// lookup resolves the request's media (media.Store.ResolveTo, start
// included: nil, or where uncached remote media is streamed as it is
// fetched).
func (a *API) lookup(r *http.Request, rc *reqCtx, legacy bool, start func(media.RemoteMedia) io.Writer) (media.Media, bool, error) {
	m, err := matrix.NewMXC(rc.param("server"), rc.param("id"))
	if err != nil {
		return media.Media{}, false, err
	}
	opt, err := readOptions(r, legacy)
	if err != nil {
		return media.Media{}, false, err
	}
	return a.opts.Store.ResolveTo(r.Context(), m, opt, start)
}

func (a *API) serveMedia(w http.ResponseWriter, r *http.Request, rc *reqCtx, legacy bool) error {
	var start func(media.RemoteMedia) io.Writer
	if r.Method == http.MethodGet && isPlainGet(r) {
		start = streamStart(w, unescape(rc.params.ByName("name")))
	}
	rec, streamed, err := a.lookup(r, rc, legacy, start)
	if streamed {
		if err != nil {
			// Headers are gone: all we can do is cut the response short.
			a.log.Warn("remote download failed while streaming", "media", rc.param("server")+"/"+rc.param("id"), "err", err)
			panic(http.ErrAbortHandler)
		}
		return nil // remote media not cached yet, streamed while fetched
	}
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
				a.log.Warn("download cut short", "media", rec.MXC.String(), "err", err)
			}
		}
		return nil
	}
	return serveContent(w, r, modified, body)
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
	req, err := media.ParseThumbnailRequest(r.URL.Query())
	if err != nil {
		return err
	}
	rec, _, err := a.lookup(r, rc, legacy, nil)
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

// streamStart returns the start callback of media.Store.ResolveTo: it
// writes the headers of remote media as its server sent them (name, when
// set, is the file name the request asks for) and passes the bytes on as
// they arrive.
func streamStart(w http.ResponseWriter, name string) func(media.RemoteMedia) io.Writer {
	return func(rm media.RemoteMedia) io.Writer {
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
	}
}

// flushWriter sends each piece to the client at once.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	http.NewResponseController(f.w).Flush()
	return n, err
}

// waitParam reads timeout_ms: how long to wait for a created ID's content
// (default media.DefaultWait; media caps it at media.MaxWait).
func waitParam(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("timeout_ms")
	if v == "" {
		return media.DefaultWait, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 {
		return 0, errorf(http.StatusBadRequest, "M_INVALID_PARAM", "timeout_ms must be a non-negative integer")
	}
	return time.Duration(min(ms, media.MaxWait.Milliseconds())) * time.Millisecond, nil
}
