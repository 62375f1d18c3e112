// Package httpapi serves the Matrix media API over HTTP: routes
// (httprouter, on the raw path), the Host that picks a homeserver, access
// tokens checked with the homeserver's whoami, Matrix JSON errors, and the
// headers the spec and browsers need, and the connection plumbing in
// front of it (RateGuard for slow peers, LimitListener). It is thin: what to store, serve or
// refuse is decided in package media; this package must never touch the
// disk or the index itself, and never answer an error without an errcode.
package httpapi
