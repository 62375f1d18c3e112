package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// uploadInfo reads what every upload shares from the request: name, type,
// declared length, limit (media refuses a declared length over the limit
// before it reads the body).
func (a *API) uploadInfo(r *http.Request, m matrix.MXC, uploader string) (media.UploadInfo, error) {
	name, err := fileNameParam(r.URL.RawQuery)
	if err != nil {
		return media.UploadInfo{}, err
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	return media.UploadInfo{
		MXC:         m,
		ContentType: ct,
		UploadName:  name,
		Uploader:    uploader,
		Size:        r.ContentLength, // -1 when chunked
		MaxSize:     a.opts.MaxUploadBytes,
	}, nil
}

// fileNameParam reads ?filename= from the raw query, splitting on "&"
// only (url.ParseQuery drops a pair holding a raw ";"). A name that is not
// UTF-8 is a 400.
func fileNameParam(rawQuery string) (string, error) {
	for _, kv := range strings.Split(rawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k != "filename" {
			continue
		}
		name, err := url.QueryUnescape(v)
		if err != nil {
			name, err = url.PathUnescape(v)
		}
		if err != nil || !utf8.ValidString(name) {
			return "", errorf(http.StatusBadRequest, "M_INVALID_PARAM", "The filename parameter is not valid UTF-8")
		}
		return name, nil
	}
	return "", nil
}

// upload: POST /_matrix/media/v3/upload?filename=
func (a *API) upload(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	m, err := matrix.NewMXC(rc.hs.Name, matrix.NewMediaID())
	if err != nil {
		return err
	}
	info, err := a.uploadInfo(r, m, rc.user.ID)
	if err != nil {
		return err
	}
	info.NewID = true
	if _, err := a.opts.Store.Upload(r.Context(), info, r.Body); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"content_uri": m.String()})
	return nil
}

// create: POST /_matrix/media/v1/create
func (a *API) create(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	m, err := matrix.NewMXC(rc.hs.Name, matrix.NewMediaID())
	if err != nil {
		return err
	}
	rec, err := a.opts.Store.Create(media.CreateInfo{MXC: m, Uploader: rc.user.ID})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"content_uri": m.String(), "unused_expires_at": rec.Expires})
	return nil
}

// fill: PUT /_matrix/media/v3/upload/{server}/{id}?filename=
func (a *API) fill(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	m, err := matrix.NewMXC(rc.param("server"), rc.param("id"))
	if err != nil {
		return err
	}
	if !a.local(m.Server()) {
		return errorf(http.StatusNotFound, "M_NOT_FOUND", "Media not found")
	}
	// The spec's order of checks (unknown, not the creator, already has
	// content) runs in Fill before it reads the body; then the size.
	info, err := a.uploadInfo(r, m, rc.user.ID)
	if err != nil {
		return err
	}
	if _, err := a.opts.Store.Fill(r.Context(), info, rc.user.ID, r.Body); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{})
	return nil
}

// config: GET /_matrix/client/v1/media/config
func (a *API) config(w http.ResponseWriter, _ *http.Request, _ *reqCtx) error {
	writeJSON(w, http.StatusOK, map[string]any{"m.upload.size": a.opts.MaxUploadBytes})
	return nil
}
