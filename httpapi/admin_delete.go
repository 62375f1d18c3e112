package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/mxcas/mxcas/matrix"
)

// adminDeleteRoutes are the admin endpoints of deletion (one media, by
// date and size) and the remote cache purge, as Synapse has them.
func (a *API) adminDeleteRoutes() []adminRoute {
	const v1 = "/_synapse/admin/v1"
	return []adminRoute{
		{http.MethodDelete, v1 + "/media/:server/:id", "delete_media", a.adminDeleteMedia},
		{http.MethodPost, v1 + "/media/delete", "delete_media_by_date_and_size", a.adminDeleteOld},
		// The older form, kept by Synapse for old tools.
		{http.MethodPost, v1 + "/media/:server/delete", "delete_media_by_date_and_size", a.adminDeleteOld},
		{http.MethodPost, v1 + "/purge_media_cache", "purge_remote_media_cache", a.adminPurgeCache},
	}
}

// deletedMedia is Synapse's answer to a deletion.
type deletedMedia struct {
	Deleted []string `json:"deleted_media"`
	Total   int      `json:"total"`
}

// adminDeleteMedia is DELETE /_synapse/admin/v1/media/{server}/{id}: the
// media is deleted (a tombstone: never served, its ID never reused; the
// bytes go at a GC). Only the admin's own homeserver's media.
func (a *API) adminDeleteMedia(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := a.adminOwnServer(rc, rc.param("server"), "delete"); err != nil {
		return err
	}
	m, err := matrix.NewMXC(rc.hs.Name, rc.param("id"))
	if err != nil {
		return err
	}
	if err := a.opts.Store.Delete(m); err != nil {
		return err
	}
	rc.noteResult(slog.Int("total", 1))
	writeJSON(w, http.StatusOK, deletedMedia{Deleted: []string{m.MediaID()}, Total: 1})
	return nil
}

// adminDeleteOld is POST /_synapse/admin/v1/media/delete (and
// /media/{server}/delete): the Host's homeserver's media last read (or,
// never read, made) before before_ts and larger than size_gt bytes is
// deleted, quarantined and protected media excepted. keep_profiles is
// checked and otherwise ignored: this store knows no profiles or rooms.
func (a *API) adminDeleteOld(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	before, err := queryBeforeTS(r)
	if err != nil {
		return err
	}
	sizeGT, err := queryInt(r, "size_gt", 0, false)
	if err != nil {
		return err
	}
	if _, err := queryBool(r, "keep_profiles", true); err != nil {
		return err
	}
	if server := rc.params.ByName("server"); server != "" {
		if err := a.adminOwnServer(rc, unescape(server), "delete"); err != nil {
			return err
		}
	}
	ms, err := a.opts.Store.DeleteOld(r.Context(), rc.hs.Name, before, sizeGT)
	out := deletedMedia{Deleted: make([]string, len(ms)), Total: len(ms)}
	for i, m := range ms {
		out.Deleted[i] = m.MediaID()
	}
	rc.noteResult(slog.Int("total", out.Total))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// adminPurgeCache is POST /_synapse/admin/v1/purge_media_cache: cached
// remote media last read (or fetched) before before_ts is removed, to be
// fetched again when asked for; quarantined remote media stays. The cache
// is shared by every homeserver served here, so any of their admins may.
func (a *API) adminPurgeCache(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	before, err := queryBeforeTS(r)
	if err != nil {
		return err
	}
	n, err := a.opts.Store.PurgeRemote(r.Context(), before)
	rc.noteResult(slog.Int("deleted", n))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int{"deleted": n})
	return nil
}

// queryBeforeTS parses the required before_ts (Unix ms) as Synapse does,
// refusing a value that looks like seconds.
func queryBeforeTS(r *http.Request) (int64, error) {
	before, err := queryInt(r, "before_ts", 0, true)
	if err != nil {
		return 0, err
	}
	if before < 30_000_000_000 { // Dec 1970 in milliseconds, Aug 2920 in seconds
		return 0, errorf(http.StatusBadRequest, "M_INVALID_PARAM", "Query parameter before_ts you provided is from the year 1970. "+
			"Double check that you are providing a timestamp in milliseconds.")
	}
	return before, nil
}
