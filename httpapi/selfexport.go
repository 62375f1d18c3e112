package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/mxcas/mxcas/media"
)

// Self-service exports: a user exports their own media (POST
// /_mxcas/v1/export) and downloads the archive's parts (GET
// /_mxcas/v1/export/{export_id}/{name}) with their own token, until the
// export expires. Off unless SelfExport.Enabled; the store decides whose
// export is whose (media/selfexport.go).

// exportPrefix is where the self-service export endpoints live.
const exportPrefix = "/_mxcas/v1/export"

// SelfExport configures the self-service export endpoints.
type SelfExport struct {
	// Enabled turns them on; off, they answer 404 M_UNRECOGNIZED.
	Enabled bool
	// TTL is how long an export's parts stay downloadable.
	TTL time.Duration
	// PartSize is the media bytes per part (0: the archive's default).
	PartSize int64
}

var errBadSelfExport = errors.New("httpapi: bad self-service export settings")

// Validate refuses a TTL that is not positive while enabled and a negative
// part size.
func (s SelfExport) Validate() error {
	if s.Enabled && s.TTL <= 0 {
		return fmt.Errorf("%w: TTL %v must be positive", errBadSelfExport, s.TTL)
	}
	if s.PartSize < 0 {
		return fmt.Errorf("%w: part size %d is negative", errBadSelfExport, s.PartSize)
	}
	return nil
}

// SetSelfExport replaces the self-service export settings of every
// request from now on (a configuration reload); bad ones are refused and
// the old ones stay. Exports already written keep their expiry. Safe for
// concurrent use.
func (a *API) SetSelfExport(s SelfExport) error {
	if err := s.Validate(); err != nil {
		return err
	}
	a.selfExport.Store(&s)
	return nil
}

// errSelfExportOff answers both endpoints while self-service is off.
var errSelfExportOff = errorf(http.StatusNotFound, "M_UNRECOGNIZED", "Self-service export is not enabled on this server")

// routeSelfExport registers the endpoints. While self-service is off they
// answer 404 M_UNRECOGNIZED before any token is looked at, as an unknown
// path does.
func (a *API) routeSelfExport() {
	handle := func(method, path string, h handler) {
		wrapped := a.wrap(path, member, h)
		a.router.Handle(method, path, func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
			if !a.selfExport.Load().Enabled {
				setRoute(w, path)
				writeError(w, errSelfExportOff)
				return
			}
			wrapped(w, r, ps)
		})
	}
	// An export is as heavy as many uploads: counted as one. Its parts are
	// downloads.
	handle(http.MethodPost, exportPrefix, a.limited(RateUpload, a.createExport))
	part := exportPrefix + "/:export_id/:name"
	handle(http.MethodGet, part, a.limited(RateDownload, a.downloadExportPart))
	handle(http.MethodHead, part, a.limited(RateDownload, a.downloadExportPart))
}

// exportAnswer is POST /_mxcas/v1/export's body.
type exportAnswer struct {
	ExportID  string       `json:"export_id"`
	ExpiresTS int64        `json:"expires_ts"`
	Media     int          `json:"media"`
	Bytes     int64        `json:"bytes"`
	Parts     []exportPart `json:"parts"`
}

type exportPart struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	URL  string `json:"url"`
}

// createExport writes the user's export and answers where its parts are.
// The body may be empty or a JSON object (whose keys are ignored).
func (a *API) createExport(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	cfg := a.selfExport.Load()
	if err := emptyOrObject(r.Body); err != nil {
		return err
	}
	if _, server, _ := strings.Cut(rc.user.ID, ":"); !strings.EqualFold(server, rc.hs.Name) {
		return errorf(http.StatusForbidden, "M_FORBIDDEN", "Only users of %s may export their media here", rc.hs.Name)
	}
	ex, err := a.opts.Store.CreateUserExport(r.Context(), rc.user.ID, cfg.PartSize, cfg.TTL)
	if errors.Is(err, media.ErrExportInProgress) {
		return &matrixError{Status: http.StatusTooManyRequests, Code: "M_LIMIT_EXCEEDED",
			Message: "An export of your media is already being written", RetryAfter: 10 * time.Second}
	}
	if err != nil {
		return err
	}
	base := a.publicBase(r) + exportPrefix + "/" + ex.ID + "/"
	ans := exportAnswer{ExportID: ex.ID, ExpiresTS: ex.Expires.UnixMilli(), Media: ex.Media, Bytes: ex.Bytes,
		Parts: make([]exportPart, len(ex.Parts))}
	for i, p := range ex.Parts {
		ans.Parts[i] = exportPart{Name: p.Name, Size: p.Size, URL: base + url.PathEscape(p.Name)}
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

// emptyOrObject reads a small request body and refuses anything but
// nothing or a JSON object.
func emptyOrObject(body io.Reader) error {
	const max = 64 << 10
	b, err := io.ReadAll(io.LimitReader(body, max+1))
	if err != nil {
		return err
	}
	if len(b) > max {
		return errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "The body must be empty or a small JSON object")
	}
	var obj map[string]json.RawMessage
	if len(bytes.TrimSpace(b)) > 0 && (json.Unmarshal(b, &obj) != nil || obj == nil) {
		return errorf(http.StatusBadRequest, "M_NOT_JSON", "The body must be empty or a JSON object")
	}
	return nil
}

// publicBase is the scheme and host the request reached us by:
// X-Forwarded-Proto and X-Forwarded-Host with TrustForwarded.
func (a *API) publicBase(r *http.Request) string {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if a.opts.TrustForwarded {
		if p, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ","); strings.TrimSpace(p) == "https" || strings.TrimSpace(p) == "http" {
			scheme = strings.TrimSpace(p)
		}
		if f, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Host"), ","); strings.TrimSpace(f) != "" {
			host = strings.TrimSpace(f)
		}
	}
	return scheme + "://" + host
}

// downloadExportPart streams one part of the user's own export.
func (a *API) downloadExportPart(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	name := rc.param("name")
	f, err := a.opts.Store.OpenUserExportPart(rc.user.ID, rc.param("export_id"), name)
	if errors.Is(err, media.ErrNotFound) {
		return errorf(http.StatusNotFound, "M_NOT_FOUND", "No such export part of yours (exports expire)")
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/gzip")
	h.Set("Content-Disposition", contentDisposition("application/gzip", name, false))
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", fi.ModTime(), f)
	return nil
}
