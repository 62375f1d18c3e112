package httpapi

import (
	"io"
	"net/http"
	"strconv"

	"github.com/mxcas/mxcas/media"
)

// streamStart returns the start callback of media.Store.ResolveTo: it
// writes the headers of remote media as its server sent them (name, when
// set, is the file name the request asks for) and passes the bytes on as
// they arrive.
func streamStart(w http.ResponseWriter, name string) func(media.RemoteMedia) io.Writer {
	return func(rm media.RemoteMedia) io.Writer {
		h := w.Header()
		h.Set("Content-Type", rm.ContentType)
		n := rm.UploadName
		if name != "" {
			n = name
		}
		h.Set("Content-Disposition", contentDisposition(rm.ContentType, n, false))
		setMediaHeaders(h)
		if rm.Size >= 0 {
			h.Set("Content-Length", strconv.FormatInt(rm.Size, 10))
		}
		w.WriteHeader(http.StatusOK)
		return flushWriter{w}
	}
}

// flushWriter sends each piece to the client at once.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	http.NewResponseController(f.w).Flush()
	return n, err
}
