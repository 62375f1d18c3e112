package httpapi

import (
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/julienschmidt/httprouter"
)

// The admin API: Synapse's media admin endpoints under /_synapse/admin/v1
// (same paths, parameters and JSON, so synapse-admin and operators' scripts
// work when a reverse proxy sends these paths here) and mxcas's own under
// /_mxcas/admin/v1. An admin is a user listed in the Host's homeserver's
// admins, authenticated like any client; an admin of one homeserver has no
// rights over another's media or users (adminServer, adminUser). Every
// admin request is logged with its admin, action, target and result.
//
// httprouter cannot hold "/media/quarantine/..." beside "/media/:server/..."
// so each admin prefix is one catch-all route whose rest is matched against
// adminRoutes here.

// adminRoute is one admin endpoint: a method and a path pattern under its
// prefix, whose segments are literals or ":name" parameters.
type adminRoute struct {
	method  string
	pattern string
	action  string // what the log calls it
	h       handler
}

// adminRoutes lists the admin endpoints (each helper file adds its own in
// an init-free way: routes() calls adminRouteTable).
func (a *API) adminRouteTable() []adminRoute {
	var rs []adminRoute
	for _, add := range []func() []adminRoute{
		a.adminMediaRoutes, a.adminDeleteRoutes, a.adminUsageRoutes,
	} {
		rs = append(rs, add()...)
	}
	return rs
}

// adminPrefixes are the paths the admin routes live under.
var adminPrefixes = []string{"/_synapse/admin/v1", "/_mxcas/admin/v1"}

// routeAdmin registers the admin catch-alls on the router.
func (a *API) routeAdmin(r *httprouter.Router) {
	routes := a.adminRouteTable()
	for _, prefix := range adminPrefixes {
		// HEAD is answered as GET, as Synapse does.
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete} {
			r.Handle(m, prefix+"/*rest", a.adminDispatch(prefix, routes))
		}
	}
}

// adminDispatch matches a request under prefix against routes: an unknown
// path is 404 M_UNRECOGNIZED (room-scoped calls among them: mxcas knows no
// rooms), a known one with another method 405 M_UNRECOGNIZED. Both are
// answered before any token is looked at, as Synapse does.
func (a *API) adminDispatch(prefix string, routes []adminRoute) httprouter.Handle {
	wrapped := make([]httprouter.Handle, len(routes))
	patterns := make([][]string, len(routes)) // nil: not under prefix
	for i, rt := range routes {
		h := rt.h
		if rt.method != http.MethodGet {
			h = a.primaryOnly(h) // a standby's admins may look, not change
		}
		wrapped[i] = a.wrap(rt.pattern, admin, a.audited(rt.action, h))
		if rest, ok := strings.CutPrefix(rt.pattern, prefix+"/"); ok {
			patterns[i] = strings.Split(rest, "/")
		}
	}
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		segs := strings.Split(strings.TrimPrefix(ps.ByName("rest"), "/"), "/")
		pathKnown := false
		for i, rt := range routes {
			if patterns[i] == nil {
				continue
			}
			params, ok := matchSegments(patterns[i], segs)
			if !ok {
				continue
			}
			pathKnown = true
			if rt.method != r.Method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
				continue
			}
			wrapped[i](w, r, params)
			return
		}
		if pathKnown {
			writeError(w, errorf(http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "Unrecognized request: method not allowed here"))
			return
		}
		writeError(w, errorf(http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request"))
	}
}

// matchSegments matches path segments against a pattern's; ":name"
// segments match any non-empty segment and become parameters (still
// escaped: reqCtx.param unescapes).
func matchSegments(pattern, segs []string) (httprouter.Params, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var ps httprouter.Params
	for i, p := range pattern {
		if name, ok := strings.CutPrefix(p, ":"); ok {
			if segs[i] == "" {
				return nil, false
			}
			ps = append(ps, httprouter.Param{Key: name, Value: segs[i]})
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return ps, true
}

// audited logs every call of an admin handler: who, what, on what, and how
// it ended. A handler adds result figures with rc.noteResult.
func (a *API) audited(action string, h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
		err := h(w, r, rc)
		attrs := []slog.Attr{slog.String("admin", rc.user.ID), slog.String("host", rc.hs.Name),
			slog.String("action", action), slog.String("method", r.Method)}
		var target []string
		for _, p := range rc.params {
			target = append(target, p.Key+"="+unescape(p.Value))
		}
		if q := auditQuery(r); q != "" {
			target = append(target, q)
		}
		attrs = append(attrs, slog.String("target", strings.Join(target, " ")))
		if err != nil {
			me := toMatrix(err)
			attrs = append(attrs, slog.String("result", "error"), slog.Int("status", me.Status),
				slog.String("errcode", me.Code), slog.String("err", err.Error()))
		} else {
			attrs = append(attrs, slog.String("result", "ok"))
			attrs = append(attrs, rc.result...)
		}
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "admin action", attrs...)
		return err
	}
}

// auditQuery is the request's query as the audit log shows it: the
// access_token parameter, a credential, is left out.
func auditQuery(r *http.Request) string {
	q := r.URL.Query()
	if !q.Has("access_token") {
		return r.URL.RawQuery
	}
	q.Del("access_token")
	return q.Encode()
}

// noteResult adds figures to the admin action's log line.
func (rc *reqCtx) noteResult(attrs ...slog.Attr) { rc.result = append(rc.result, attrs...) }

// isAdmin reports whether user is an admin of hs.
func (hs *Homeserver) isAdmin(userID string) bool {
	return slices.Contains(hs.Admins, userID)
}

// adminServer checks that the admin of rc may act on media of server: their
// own homeserver's, or remote media (the remote cache is shared by every
// homeserver served here). Another homeserver served here is 403
// M_FORBIDDEN.
func (a *API) adminServer(rc *reqCtx, server string) error {
	if a.local(server) && !strings.EqualFold(server, rc.hs.Name) {
		return errorf(http.StatusForbidden, "M_FORBIDDEN", "You are not an admin of %s", server)
	}
	return nil
}

// adminOwnServer checks that server is the admin's own homeserver: for
// calls that only apply to local media (Synapse: "Can only delete local
// media"). Another homeserver served here is 403, a remote one 400.
func (a *API) adminOwnServer(rc *reqCtx, server, what string) error {
	if err := a.adminServer(rc, server); err != nil {
		return err
	}
	if !strings.EqualFold(server, rc.hs.Name) {
		return errorf(http.StatusBadRequest, "M_UNKNOWN", "Can only %s local media", what)
	}
	return nil
}

// adminUser checks that userID is a user of the admin's own homeserver. A
// malformed ID is 400 M_INVALID_PARAM, a user of another homeserver served
// here 403 M_FORBIDDEN, a remote user 400 (Synapse: "Can only look up local
// users").
func (a *API) adminUser(rc *reqCtx, userID string) error {
	local, server, ok := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	if !strings.HasPrefix(userID, "@") || !ok || local == "" || server == "" {
		return errorf(http.StatusBadRequest, "M_INVALID_PARAM", "%q is not a user ID", userID)
	}
	if strings.EqualFold(server, rc.hs.Name) {
		return nil
	}
	if a.local(server) {
		return errorf(http.StatusForbidden, "M_FORBIDDEN", "You are not an admin of %s", server)
	}
	return errorf(http.StatusBadRequest, "M_UNKNOWN", "Can only look up local users")
}

// queryInt parses the non-negative integer query parameter name: absent is
// def, or 400 M_MISSING_PARAM when required; not an integer or negative is
// 400 M_INVALID_PARAM (Synapse's parse_integer).
func queryInt(r *http.Request, name string, def int64, required bool) (int64, error) {
	v, ok := r.URL.Query()[name]
	if !ok || len(v) == 0 {
		if required {
			return 0, errorf(http.StatusBadRequest, "M_MISSING_PARAM", "Missing integer query parameter %q", name)
		}
		return def, nil
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || n < 0 || strings.HasPrefix(v[0], "+") {
		return 0, errorf(http.StatusBadRequest, "M_INVALID_PARAM", "Query parameter %q must be a string representing a positive integer.", name)
	}
	return n, nil
}

// queryBool parses the boolean query parameter name ("true" or "false"):
// absent is def, anything else 400 M_INVALID_PARAM (Synapse's
// parse_boolean).
func queryBool(r *http.Request, name string, def bool) (bool, error) {
	v, ok := r.URL.Query()[name]
	if !ok || len(v) == 0 {
		return def, nil
	}
	switch v[0] {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errorf(http.StatusBadRequest, "M_INVALID_PARAM", "Boolean query parameter %q must be one of ['true', 'false']", name)
}

// queryEnum parses the query parameter name as one of allowed: absent is
// def, anything else 400 M_INVALID_PARAM.
func queryEnum(r *http.Request, name, def string, allowed ...string) (string, error) {
	v, ok := r.URL.Query()[name]
	if !ok || len(v) == 0 {
		return def, nil
	}
	for _, a := range allowed {
		if v[0] == a {
			return a, nil
		}
	}
	return "", errorf(http.StatusBadRequest, "M_INVALID_PARAM", "Query parameter %q must be one of [%s]", name, strings.Join(allowed, ", "))
}

// page is Synapse's offset pagination: the slice [start, end) of total
// items for from and limit, and the next_token to give (nil on the last
// page).
func page(total, from, limit int64) (start, end int64, next *int64) {
	start = min(from, total)
	end = min(start+limit, total)
	if end < total {
		n := end
		next = &n
	}
	return start, end, next
}
