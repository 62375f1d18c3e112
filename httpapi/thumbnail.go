package httpapi

import (
	"net/http"
	"time"

	"github.com/mxcas/mxcas/media"
)

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
