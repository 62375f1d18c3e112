package httpapi

import "net/http"

// A standby (replication) serves reads of what it has applied and refuses
// every request that would write records of its own: uploads, creates and
// their PUTs, URL previews (they store what they fetch) and every admin
// request but GETs. Its own thumbnails and remote media cache are not
// refused: they are local to it. SetStandby lifts the refusal at
// promotion, at once.

// SetStandby makes the API a standby's, following primary (the URL named
// in the refusal), or, with "", a primary's: nothing is refused. Safe for
// concurrent use with requests.
func (a *API) SetStandby(primary string) { a.standby.Store(&primary) }

// primaryOnly is h, refused with 503 M_UNKNOWN naming the primary while
// the API is a standby's.
func (a *API) primaryOnly(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
		if p := *a.standby.Load(); p != "" {
			return errorf(http.StatusServiceUnavailable, "M_UNKNOWN", "this server is a read-only standby of %s; write to the primary", p)
		}
		return h(w, r, rc)
	}
}
