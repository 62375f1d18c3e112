package httpapi

import (
	"io"
	"net/http"
	"strconv"
	"sync"
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
	if !a.local(m.Server()) && a.opts.Store.WillFetch(m, opt) {
		if err := a.limit(r, rc, RateRemoteFetch); err != nil {
			return media.Media{}, false, err
		}
	}
	return a.opts.Store.ResolveTo(r.Context(), m, opt, start)
}

// serveMedia answers a download: remote media not cached yet is streamed
// as it is fetched; stored media is served from its chunks.
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
		return a.serveWhole(w, r, rec, body, modified)
	}
	return serveContent(w, r, modified, body)
}

// serveWhole answers the common case, a whole object with no conditions:
// it streams the chunk files straight to the socket (splice).
func (a *API) serveWhole(w http.ResponseWriter, r *http.Request, rec media.Media, body *media.Reader, modified time.Time) error {
	h := w.Header()
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.FormatInt(body.Size(), 10))
	h.Set("Last-Modified", modified.UTC().Format(http.TimeFormat))
	if r.Method != http.MethodHead {
		if err := body.Check(); err != nil {
			dropMediaHeaders(h)
			return err // damaged from the start: nothing sent yet
		}
	}
	if r.Method != http.MethodHead && body.Size() <= smallBody {
		return writeSmall(w, body)
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

// smallBody is the largest whole object written from memory (writeSmall)
// rather than with sendfile: below it, a copy costs less than the
// sniffing copy, header flush and sendfile of the file path, and the
// headers go out in the same write as the body's first bytes.
const smallBody = 64 << 10

// smallBufs holds the buffers of writeSmall.
var smallBufs = sync.Pool{New: func() any { b := make([]byte, smallBody); return &b }}

// writeSmall answers 200 with the whole of body, read (and so verified)
// into memory first: damage anywhere in it is an error answer, nothing
// sent yet.
func writeSmall(w http.ResponseWriter, body *media.Reader) error {
	buf := smallBufs.Get().(*[]byte)
	defer smallBufs.Put(buf)
	b := (*buf)[:body.Size()]
	if _, err := io.ReadFull(body, b); err != nil {
		dropMediaHeaders(w.Header())
		return err
	}
	w.WriteHeader(http.StatusOK)
	w.Write(b) // a client gone away is no error of ours
	return nil
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
