package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/mxcas/mxcas/matrix"
)

// adminMediaRoutes are the admin endpoints of query one media, quarantine (by ID, a user's, by content) and protect.
func (a *API) adminMediaRoutes() []adminRoute {
	const syn, own = "/_synapse/admin/v1", "/_mxcas/admin/v1"
	return []adminRoute{
		{http.MethodGet, syn + "/media/:server/:id", "query_media", a.adminQueryMedia},
		{http.MethodPost, syn + "/media/quarantine/:server/:id", "quarantine_media", a.adminQuarantine(true)},
		{http.MethodPost, syn + "/media/unquarantine/:server/:id", "unquarantine_media", a.adminQuarantine(false)},
		{http.MethodPost, syn + "/user/:user_id/media/quarantine", "quarantine_user_media", a.adminQuarantineUser},
		{http.MethodPost, syn + "/media/protect/:id", "protect_media", a.adminProtect(true)},
		{http.MethodPost, syn + "/media/unprotect/:id", "unprotect_media", a.adminProtect(false)},
		{http.MethodPost, own + "/quarantine/content/:server/:id", "quarantine_content", a.adminQuarantineContent(true)},
		{http.MethodDelete, own + "/quarantine/content/:server/:id", "unquarantine_content", a.adminQuarantineContent(false)},
	}
}

// adminMedia is the media the path names (server and id), checked against
// the admin's scope (adminServer).
func (a *API) adminMedia(rc *reqCtx) (matrix.MXC, error) {
	server := rc.param("server")
	if err := a.adminServer(rc, server); err != nil {
		return matrix.MXC{}, err
	}
	return matrix.NewMXC(server, rc.param("id"))
}

// mediaInfo is Synapse's media_info: local media has no media_origin nor
// filesystem_id, remote media no user_id nor safe_from_quarantine.
// filesystem_id is the object hash; sha256 is null (mxcas keeps BLAKE3
// only); url_cache is null (previews keep their media elsewhere).
type mediaInfo struct {
	MediaOrigin        *string `json:"media_origin"`
	UserID             *string `json:"user_id"`
	MediaID            string  `json:"media_id"`
	MediaType          string  `json:"media_type"`
	MediaLength        *int64  `json:"media_length"`
	UploadName         *string `json:"upload_name"`
	CreatedTS          int64   `json:"created_ts"`
	FilesystemID       *string `json:"filesystem_id"`
	URLCache           *string `json:"url_cache"`
	LastAccessTS       *int64  `json:"last_access_ts"`
	QuarantinedBy      *string `json:"quarantined_by"`
	Authenticated      bool    `json:"authenticated"`
	SafeFromQuarantine *bool   `json:"safe_from_quarantine"`
	SHA256             *string `json:"sha256"`
}

// orNull is a pointer to v, or nil (JSON null) for the zero value.
func orNull[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

// adminQueryMedia: GET /_synapse/admin/v1/media/{server}/{id}. Quarantined
// media is shown; deleted media, and remote media not cached (a quarantine
// placeholder among it), is 404 M_NOT_FOUND.
func (a *API) adminQueryMedia(w http.ResponseWriter, _ *http.Request, rc *reqCtx) error {
	m, err := a.adminMedia(rc)
	if err != nil {
		return err
	}
	rec, err := a.opts.Store.Stat(m)
	if err != nil {
		return err
	}
	if rec.Placeholder() { // Stat already answers ErrNotFound for deleted media
		return errorf(http.StatusNotFound, "M_NOT_FOUND", "Unknown media")
	}
	info := mediaInfo{
		MediaID: m.MediaID(), MediaType: rec.ContentType, UploadName: orNull(rec.UploadName),
		CreatedTS: rec.Created, LastAccessTS: orNull(rec.LastAccess), QuarantinedBy: orNull(rec.QuarantinedBy),
		Authenticated: rec.RequiresAuth,
	}
	if !rec.Pending {
		info.MediaLength = &rec.Size
	}
	if rec.Remote {
		info.MediaOrigin = orNull(m.Server())
		info.FilesystemID = orNull(rec.Object.String())
	} else {
		info.UserID = orNull(rec.Uploader)
		info.SafeFromQuarantine = &rec.Protected
	}
	writeJSON(w, http.StatusOK, map[string]any{"media_info": info})
	return nil
}

// adminQuarantine: POST /_synapse/admin/v1/media/{un,}quarantine/{server}/{id}.
func (a *API) adminQuarantine(on bool) handler {
	return func(w http.ResponseWriter, _ *http.Request, rc *reqCtx) error {
		m, err := a.adminMedia(rc)
		if err != nil {
			return err
		}
		if on {
			err = a.opts.Store.Quarantine(m, rc.user.ID)
		} else {
			err = a.opts.Store.Unquarantine(m)
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, struct{}{})
		return nil
	}
}

// adminQuarantineUser: POST /_synapse/admin/v1/user/{user_id}/media/quarantine.
func (a *API) adminQuarantineUser(w http.ResponseWriter, _ *http.Request, rc *reqCtx) error {
	userID := rc.param("user_id")
	if err := a.adminUser(rc, userID); err != nil {
		return err
	}
	n, err := a.opts.Store.QuarantineUser(userID, rc.user.ID)
	if err != nil {
		return err
	}
	rc.noteResult(slog.Int("num_quarantined", n))
	writeJSON(w, http.StatusOK, map[string]int{"num_quarantined": n})
	return nil
}

// adminProtect: POST /_synapse/admin/v1/media/{un,}protect/{id}, local
// media of the Host's homeserver.
func (a *API) adminProtect(on bool) handler {
	return func(w http.ResponseWriter, _ *http.Request, rc *reqCtx) error {
		m, err := matrix.NewMXC(rc.hs.Name, rc.param("id"))
		if err != nil {
			return err
		}
		if err := a.opts.Store.SetProtected(m, on); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, struct{}{})
		return nil
	}
}

// adminQuarantineContent: POST and DELETE
// /_mxcas/admin/v1/quarantine/content/{server}/{id}: quarantine the
// content of that media for the admin's homeserver, or lift it. The answer
// counts the media records now blocked (POST: num_quarantined) or no
// longer blocked (DELETE: num_unquarantined).
func (a *API) adminQuarantineContent(on bool) handler {
	return func(w http.ResponseWriter, _ *http.Request, rc *reqCtx) error {
		m, err := a.adminMedia(rc)
		if err != nil {
			return err
		}
		var n int
		key := "num_quarantined"
		if on {
			n, err = a.opts.Store.QuarantineContent(m, rc.hs.Name, rc.user.ID)
		} else {
			n, err = a.opts.Store.UnquarantineContent(m, rc.hs.Name)
			key = "num_unquarantined"
		}
		if err != nil {
			return err
		}
		rc.noteResult(slog.Int(key, n))
		writeJSON(w, http.StatusOK, map[string]int{key: n})
		return nil
	}
}
