package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/mxcas/mxcas/media"
)

// serveContent serves body with http.ServeContent (ranges, conditional
// requests), holding the status line back until the first byte of the body
// is ready: body checks each chunk before giving out its bytes, so damage
// where the answer starts becomes an error answer (500, see toMatrix), and
// damage found later, with the headers out, cuts the connection.
func serveContent(w http.ResponseWriter, r *http.Request, modified time.Time, body *media.Reader) error {
	hw := &heldWriter{w: w}
	http.ServeContent(hw, r, "", modified, body)
	if err := body.Err(); err != nil {
		if !hw.sent {
			dropMediaHeaders(w.Header())
			return err
		}
		abortIfDamaged(err)
	}
	hw.flushHeader()
	return nil
}

// dropMediaHeaders removes what a media answer set before it turned out
// to be an error answer.
func dropMediaHeaders(h http.Header) {
	for _, k := range []string{"Content-Length", "Content-Range", "Accept-Ranges", "Last-Modified", "Cache-Control"} {
		h.Del(k)
	}
}

// abortIfDamaged cuts the connection when err says the stored content is
// damaged and the headers are already out: the client must not take a
// short body for a whole one.
func abortIfDamaged(err error) {
	if errors.Is(err, media.ErrDamaged) {
		panic(http.ErrAbortHandler)
	}
}

// heldWriter delays WriteHeader until the first Write (or flushHeader). It
// has no ReadFrom: io.Copy must read before it writes, so a failed first
// read leaves the headers unsent.
type heldWriter struct {
	w    http.ResponseWriter
	code int
	sent bool
}

func (h *heldWriter) Header() http.Header { return h.w.Header() }

func (h *heldWriter) WriteHeader(code int) {
	if h.code == 0 {
		h.code = code
	}
}

func (h *heldWriter) flushHeader() {
	if !h.sent {
		h.sent = true
		if h.code != 0 {
			h.w.WriteHeader(h.code)
		}
	}
}

func (h *heldWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	h.flushHeader()
	return h.w.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (h *heldWriter) Unwrap() http.ResponseWriter { return h.w }
