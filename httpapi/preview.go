package httpapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/mxcas/mxcas/media"
)

// previewURL: GET /_matrix/client/v1/media/preview_url?url=&ts= (and the
// legacy /_matrix/media/{r0,v1,v3}/preview_url). A token is required
// (guests are refused, as Synapse does); with previews off the path is
// unrecognised (404 M_UNRECOGNIZED), as in Synapse. url is required; ts,
// when given, is a non-negative integer (Unix ms).
func (a *API) previewURL(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if !a.opts.Store.PreviewsEnabled() {
		return media.ErrPreviewsDisabled
	}
	q := r.URL.Query()
	u := q.Get("url")
	if u == "" {
		return fmt.Errorf("%w: url", media.ErrMissingParam)
	}
	var ts int64
	if q.Has("ts") {
		var err error
		ts, err = strconv.ParseInt(q.Get("ts"), 10, 64)
		if err != nil || ts < 0 {
			return fmt.Errorf("%w: ts must be a non-negative integer (Unix ms)", media.ErrBadParam)
		}
	}
	p, err := a.opts.Store.PreviewURL(r.Context(), rc.hs.Name, u, ts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}
