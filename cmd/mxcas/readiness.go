package main

import (
	"io"
	"net/http"
	"sync/atomic"

	"github.com/mxcas/mxcas/httpapi"
	"github.com/mxcas/mxcas/media"
)

// gate is the handler of the API's listener, which opens before the store
// does. It answers GET /readyz itself, in plain text like /healthz: 503
// "starting" while the store opens, 200 "ready" while serving, 503
// "shutting down" from the stop signal on (and "failed" once the store
// takes no more writes). Until the API is there, /healthz is 200
// "starting" (the process is alive) and every other request is 503
// M_UNKNOWN with Retry-After. Safe for concurrent use.
type gate struct {
	serving  atomic.Pointer[gateTarget]
	stopping atomic.Bool
}

type gateTarget struct {
	api   *httpapi.API
	store *media.Store
}

// open passes requests to api from now on.
func (g *gate) open(api *httpapi.API, st *media.Store) { g.serving.Store(&gateTarget{api, st}) }

// stop makes /readyz answer 503 from now on; requests are still served.
func (g *gate) stop() { g.stopping.Store(true) }

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := g.serving.Load()
	if r.URL.Path == "/readyz" {
		g.ready(w, t)
		return
	}
	if t != nil {
		t.api.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/healthz" {
		plain(w, http.StatusOK, "starting\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, `{"errcode":"M_UNKNOWN","error":"The server is starting"}`)
}

// ready answers /readyz.
func (g *gate) ready(w http.ResponseWriter, t *gateTarget) {
	switch {
	case t == nil:
		plain(w, http.StatusServiceUnavailable, "starting\n")
	case g.stopping.Load():
		plain(w, http.StatusServiceUnavailable, "shutting down\n")
	case t.store.Err() != nil:
		plain(w, http.StatusServiceUnavailable, "failed\n")
	default:
		plain(w, http.StatusOK, "ready\n")
	}
}

func plain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, body)
}
