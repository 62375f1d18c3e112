package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/mxcas/mxcas/media"
)

// adminUsageRoutes are the admin endpoints of a user's media list, the users' media statistics and mxcas's usage.
func (a *API) adminUsageRoutes() []adminRoute {
	return []adminRoute{
		{http.MethodGet, "/_synapse/admin/v1/users/:user_id/media", "list_user_media", a.adminListUserMedia},
		{http.MethodDelete, "/_synapse/admin/v1/users/:user_id/media", "delete_user_media", a.adminDeleteUserMedia},
		{http.MethodGet, "/_synapse/admin/v1/statistics/users/media", "user_media_statistics", a.adminUserMediaStats},
		{http.MethodGet, "/_mxcas/admin/v1/usage", "usage", a.adminUsage},
		{http.MethodGet, "/_mxcas/admin/v1/usage/users/:user_id", "user_usage", a.adminUserUsage},
	}
}

// userMediaOrders maps Synapse's order_by values of a user's media list.
var userMediaOrders = map[string]media.MediaOrder{
	"media_id": media.OrderMediaID, "upload_name": media.OrderUploadName, "created_ts": media.OrderCreated,
	"last_access_ts": media.OrderLastAccess, "media_length": media.OrderLength, "media_type": media.OrderType,
	"quarantined_by": media.OrderQuarantinedBy, "safe_from_quarantine": media.OrderProtected,
}

// userMediaPage is the page of a user's media a request asks for: the
// user (checked), from, limit, and the order.
type userMediaPage struct {
	user        string
	from, limit int64
	order       media.MediaOrder
	desc        bool
}

// parseUserMediaPage reads the parameters of Synapse's "List media
// uploaded by a user", in Synapse's order, so a request with several bad
// ones gets Synapse's error: the user, from, limit, order_by, dir. With
// neither order_by nor dir the order is newest first.
func (a *API) parseUserMediaPage(r *http.Request, rc *reqCtx) (p userMediaPage, err error) {
	p.user = rc.param("user_id")
	if err = a.adminUser(rc, p.user); err != nil {
		return p, err
	}
	if p.from, err = queryInt(r, "from", 0, false); err != nil {
		return p, err
	}
	if p.limit, err = queryInt(r, "limit", 100, false); err != nil {
		return p, err
	}
	q := r.URL.Query()
	if !q.Has("order_by") && !q.Has("dir") {
		p.order, p.desc = media.OrderCreated, true
		return p, nil
	}
	orderBy, err := queryEnum(r, "order_by", "created_ts", "media_id", "upload_name", "created_ts",
		"last_access_ts", "media_length", "media_type", "quarantined_by", "safe_from_quarantine")
	if err != nil {
		return p, err
	}
	p.order = userMediaOrders[orderBy]
	dir, err := queryEnum(r, "dir", "f", "f", "b")
	p.desc = dir == "b"
	return p, err
}

// requestedUserMedia is the page of a user's media the request asks for
// (see parseUserMediaPage), their total, and the next_token.
func (a *API) requestedUserMedia(r *http.Request, rc *reqCtx) (items []media.Media, total int64, next *int64, err error) {
	p, err := a.parseUserMediaPage(r, rc)
	if err != nil {
		return nil, 0, nil, err
	}
	list, err := a.opts.Store.UserMedia(r.Context(), p.user, p.order, p.desc)
	if err != nil {
		return nil, 0, nil, err
	}
	total = int64(len(list))
	start, end, next := page(total, p.from, p.limit)
	return list[start:end], total, next, nil
}

// userMediaJSON is one media of Synapse's user media list: the fields its
// documentation lists, and user_id, url_cache and authenticated from its
// LocalMedia. Synapse's sha256 and quarantined_ts are left out: mxcas
// hashes with BLAKE3 and keeps no quarantine time.
type userMediaJSON struct {
	CreatedTS          int64   `json:"created_ts"`
	LastAccessTS       *int64  `json:"last_access_ts"`
	MediaID            string  `json:"media_id"`
	MediaLength        int64   `json:"media_length"`
	MediaType          string  `json:"media_type"`
	QuarantinedBy      *string `json:"quarantined_by"`
	SafeFromQuarantine bool    `json:"safe_from_quarantine"`
	UploadName         *string `json:"upload_name"`
	URLCache           *string `json:"url_cache"`
	UserID             string  `json:"user_id"`
	Authenticated      bool    `json:"authenticated"`
}

func userMediaOf(m media.Media) userMediaJSON {
	j := userMediaJSON{CreatedTS: m.Created, MediaID: m.MXC.MediaID(), MediaLength: m.Size,
		MediaType: m.ContentType, SafeFromQuarantine: m.Protected, UserID: m.Uploader,
		Authenticated: m.RequiresAuth}
	if m.LastAccess != 0 {
		j.LastAccessTS = &m.LastAccess
	}
	if m.Quarantined {
		j.QuarantinedBy = &m.QuarantinedBy
	}
	if m.UploadName != "" {
		j.UploadName = &m.UploadName
	}
	return j
}

// adminListUserMedia is GET /_synapse/admin/v1/users/{user_id}/media. A
// user with no media gets an empty list (Synapse: 404 for a user it does
// not know; mxcas knows no users).
func (a *API) adminListUserMedia(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	list, total, next, err := a.requestedUserMedia(r, rc)
	if err != nil {
		return err
	}
	out := make([]userMediaJSON, 0, len(list))
	for _, m := range list {
		out = append(out, userMediaOf(m))
	}
	rc.noteResult(slog.Int64("total", total), slog.Int("listed", len(out)))
	writeJSON(w, http.StatusOK, struct {
		Media     []userMediaJSON `json:"media"`
		NextToken *int64          `json:"next_token,omitempty"`
		Total     int64           `json:"total"`
	}{out, next, total})
	return nil
}

// adminDeleteUserMedia is DELETE /_synapse/admin/v1/users/{user_id}/media:
// it deletes the page of the user's media the list would show for the
// same parameters (there is no next_token: what is left has moved up).
// Media deleted meanwhile by another call is left out of deleted_media.
func (a *API) adminDeleteUserMedia(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	list, _, _, err := a.requestedUserMedia(r, rc)
	if err != nil {
		return err
	}
	deleted := make([]string, 0, len(list))
	for _, m := range list {
		err := a.opts.Store.Delete(m.MXC)
		if errors.Is(err, media.ErrNotFound) {
			continue
		}
		if err != nil {
			rc.noteResult(slog.Int("deleted", len(deleted)))
			return err
		}
		deleted = append(deleted, m.MXC.MediaID())
	}
	rc.noteResult(slog.Int("deleted", len(deleted)))
	writeJSON(w, http.StatusOK, struct {
		DeletedMedia []string `json:"deleted_media"`
		Total        int      `json:"total"`
	}{deleted, len(deleted)})
	return nil
}

// adminUserMediaStats is GET /_synapse/admin/v1/statistics/users/media,
// for the users of the Host's homeserver. Parameters are read and checked
// in Synapse's order: order_by, from, limit, from_ts, until_ts,
// search_term, dir. mxcas knows no display names: every displayname is
// null, so ordering by it leaves every row tied and the tie-break, user
// ID ascending, decides.
func (a *API) adminUserMediaStats(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	orderBy, err := queryEnum(r, "order_by", "user_id", "media_length", "media_count", "user_id", "displayname")
	if err != nil {
		return err
	}
	var f media.UserStatsFilter
	var from, limit int64
	for _, p := range []struct {
		name string
		def  int64
		v    *int64
	}{{"from", 0, &from}, {"limit", 100, &limit}, {"from_ts", 0, &f.Since}, {"until_ts", 0, &f.Until}} {
		if *p.v, err = queryInt(r, p.name, p.def, false); err != nil {
			return err
		}
	}
	q := r.URL.Query()
	if q.Has("until_ts") && f.Until <= f.Since {
		return errorf(http.StatusBadRequest, "M_INVALID_PARAM", "Query parameter until_ts must be greater than from_ts.")
	}
	if f.Search = q.Get("search_term"); q.Has("search_term") && f.Search == "" {
		return errorf(http.StatusBadRequest, "M_INVALID_PARAM", "Query parameter search_term cannot be an empty string.")
	}
	dir, err := queryEnum(r, "dir", "f", "f", "b")
	if err != nil {
		return err
	}
	order, desc := media.StatsByUserID, dir == "b"
	switch orderBy {
	case "media_length":
		order = media.StatsByBytes
	case "media_count":
		order = media.StatsByCount
	case "displayname":
		desc = false
	}
	rows, err := a.opts.Store.UsersMediaStats(r.Context(), rc.hs.Name, f, order, desc)
	if err != nil {
		return err
	}
	type userJSON struct {
		Displayname *string `json:"displayname"`
		MediaCount  int64   `json:"media_count"`
		MediaLength int64   `json:"media_length"`
		UserID      string  `json:"user_id"`
	}
	total := int64(len(rows))
	start, end, next := page(total, from, limit)
	users := make([]userJSON, 0, end-start)
	for _, row := range rows[start:end] {
		users = append(users, userJSON{MediaCount: row.Media, MediaLength: row.Bytes, UserID: row.UserID})
	}
	rc.noteResult(slog.Int64("total", total))
	writeJSON(w, http.StatusOK, struct {
		Users     []userJSON `json:"users"`
		NextToken *int64     `json:"next_token,omitempty"`
		Total     int64      `json:"total"`
	}{users, next, total})
	return nil
}

// usageJSON is media.Usage as mxcas's usage endpoints answer it.
type usageJSON struct {
	MediaCount     int64   `json:"media_count"`
	LogicalBytes   int64   `json:"logical_bytes"`
	StoredBytes    int64   `json:"stored_bytes"`
	DedupRatio     float64 `json:"dedup_ratio"`
	ThumbnailCount int64   `json:"thumbnail_count"`
	ThumbnailBytes int64   `json:"thumbnail_bytes"`
}

func usageOf(u media.Usage) usageJSON {
	return usageJSON{MediaCount: u.Media, LogicalBytes: u.LogicalBytes, StoredBytes: u.StoredBytes,
		DedupRatio: u.DedupRatio(), ThumbnailCount: u.Thumbnails, ThumbnailBytes: u.ThumbnailBytes}
}

// adminUsage is GET /_mxcas/admin/v1/usage: the usage of the Host's
// homeserver's local media, and of the remote cache all homeservers served
// here share.
func (a *API) adminUsage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	u, err := a.opts.Store.ServerUsage(r.Context(), rc.hs.Name)
	if err != nil {
		return err
	}
	type remoteJSON struct {
		Shared     bool  `json:"shared"`
		MediaCount int64 `json:"media_count"`
		Bytes      int64 `json:"bytes"`
	}
	writeJSON(w, http.StatusOK, struct {
		ServerName string `json:"server_name"`
		usageJSON
		RemoteCache remoteJSON `json:"remote_cache"`
	}{rc.hs.Name, usageOf(u.Usage), remoteJSON{true, u.RemoteMedia, u.RemoteBytes}})
	return nil
}

// adminUserUsage is GET /_mxcas/admin/v1/usage/users/{user_id}: the usage
// of the local media a user of the Host's homeserver uploaded.
func (a *API) adminUserUsage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	user := rc.param("user_id")
	if err := a.adminUser(rc, user); err != nil {
		return err
	}
	u, err := a.opts.Store.UserUsage(r.Context(), user)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		UserID string `json:"user_id"`
		usageJSON
	}{user, usageOf(u)})
	return nil
}
