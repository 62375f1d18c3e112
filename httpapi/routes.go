package httpapi

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// routes registers every endpoint on a new router (newRouter).
func (a *API) routes() {
	r := a.newRouter()
	a.router = r

	r.GET("/healthz", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		setRoute(w, "/healthz")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := a.opts.Store.Err(); err != nil {
			// The store takes no more writes; the process is ending.
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("failed: " + err.Error() + "\n"))
			return
		}
		w.Write([]byte("ok\n"))
	})

	// Every GET answers HEAD too; downloads also take a trailing slash
	// (an empty file name: the upload's own name is used).
	get := func(path string, acc access, h handler) {
		a.handle(http.MethodGet, path, acc, h)
		a.handle(http.MethodHead, path, acc, h)
	}
	for _, v := range []string{"r0", "v1", "v3"} {
		legacy := "/_matrix/media/" + v
		a.handle(http.MethodPost, legacy+"/upload", member, a.limited(RateUpload, a.upload))
		a.handle(http.MethodPut, legacy+"/upload/:server/:id", member, a.limited(RateUpload, a.fill))
		get(legacy+"/config", member, a.config)
		get(legacy+"/download/:server/:id", public, a.limited(RateDownload, a.downloadLegacy))
		get(legacy+"/download/:server/:id/", public, a.limited(RateDownload, a.downloadLegacy))
		get(legacy+"/download/:server/:id/:name", public, a.limited(RateDownload, a.downloadLegacy))
		get(legacy+"/thumbnail/:server/:id", public, a.limited(RateThumbnail, a.thumbnailLegacy))
		get(legacy+"/preview_url", member, a.limited(RatePreview, a.previewURL))
		if v != "r0" {
			a.handle(http.MethodPost, legacy+"/create", member, a.limited(RateUpload, a.create))
		}
	}
	const client = "/_matrix/client/v1/media"
	get(client+"/config", member, a.config)
	get(client+"/download/:server/:id", authenticated, a.limited(RateDownload, a.download))
	get(client+"/download/:server/:id/", authenticated, a.limited(RateDownload, a.download))
	get(client+"/download/:server/:id/:name", authenticated, a.limited(RateDownload, a.download))
	get(client+"/thumbnail/:server/:id", authenticated, a.limited(RateThumbnail, a.thumbnail))
	get(client+"/preview_url", member, a.limited(RatePreview, a.previewURL))

	// Federation: signed by the origin server, checked in the handler.
	get("/_matrix/federation/v1/media/download/:id", federation, a.fedDownload)
	get("/_matrix/federation/v1/media/thumbnail/:id", federation, a.fedThumbnail)
	get("/_matrix/key/v2/server", federation, a.keyServer)
	get("/_matrix/key/v2/server/:keyid", federation, a.keyServer) // deprecated form, still asked by some notaries

	a.routeSelfExport()
	a.routeAdmin(r)
}

// newRouter returns a router whose fallbacks answer in Matrix form: unknown
// paths are 404 M_UNRECOGNIZED, known paths with another method 405
// M_UNRECOGNIZED, a panic 500 M_UNKNOWN (http.ErrAbortHandler passes on).
func (a *API) newRouter() *httprouter.Router {
	r := httprouter.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.HandleOPTIONS = false // ServeHTTP answers OPTIONS itself
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, errorf(http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request"))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, errorf(http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "Unrecognized request: method not allowed here"))
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		if v == http.ErrAbortHandler {
			panic(v) // a response cut short on purpose: let net/http drop the connection
		}
		a.log.Error("panic in handler", "method", req.Method, "path", req.URL.Path, "panic", v)
		writeError(w, errorf(http.StatusInternalServerError, "M_UNKNOWN", "Internal server error"))
	}
	return r
}
