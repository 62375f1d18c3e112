package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// matrixError is a Matrix error answer: status, errcode and message.
// Handlers return errors; writeError maps any error to one of these.
type matrixError struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, when set, becomes Retry-After and retry_after_ms.
	RetryAfter time.Duration
	// Extra fields of the JSON body (soft_logout, say).
	Extra map[string]any
}

func (e *matrixError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func errorf(status int, code, format string, args ...any) *matrixError {
	return &matrixError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// toMatrix maps an error to the Matrix answer. Unknown errors are 500
// M_UNKNOWN with a generic message (the detail goes to the log only).
func toMatrix(err error) *matrixError {
	var me *matrixError
	if errors.As(err, &me) {
		return me
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, media.ErrNoSpace):
		// 507 says what it is; Synapse answers 500 M_UNKNOWN to disk errors,
		// and clients retry either like any 5xx.
		return errorf(http.StatusInsufficientStorage, "M_UNKNOWN", "no space left on the media store")
	case errors.Is(err, media.ErrQuotaExceeded):
		// Before ErrTruncated: a body cut at the quota is wrapped in it.
		return errorf(http.StatusForbidden, "M_FORBIDDEN", "%s", quotaMessage(err))
	case errors.Is(err, media.ErrDamaged):
		return errorf(http.StatusInternalServerError, "M_UNKNOWN", "stored content is damaged")
	case errors.Is(err, media.ErrStorageUnavailable), errors.Is(err, media.ErrIndexUnavailable):
		// The object store behind the chunks is down or failing: nothing was
		// recorded, and the same request may pass once it is back.
		return &matrixError{Status: http.StatusServiceUnavailable, Code: "M_UNKNOWN",
			Message: "media storage unavailable", RetryAfter: 5 * time.Second}
	case errors.Is(err, media.ErrFailed):
		return errorf(http.StatusServiceUnavailable, "M_UNKNOWN", "The media store failed; the server is restarting")
	case errors.As(err, &mbe), errors.Is(err, media.ErrTooLarge):
		return errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "The upload is larger than this server allows")
	case errors.Is(err, media.ErrThumbnailTooLarge):
		return errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "The media is too large to thumbnail")
	case errors.Is(err, media.ErrMissingParam):
		return errorf(http.StatusBadRequest, "M_MISSING_PARAM", "Missing %s", detail(err, media.ErrMissingParam))
	case errors.Is(err, media.ErrBadParam):
		return errorf(http.StatusBadRequest, "M_INVALID_PARAM", "%s", detail(err, media.ErrBadParam))
	case errors.Is(err, media.ErrCannotThumbnail):
		return errorf(http.StatusBadRequest, "M_UNKNOWN", "Cannot generate a thumbnail of this media")
	case errors.Is(err, media.ErrBusy):
		return &matrixError{Status: http.StatusTooManyRequests, Code: "M_LIMIT_EXCEEDED",
			Message: "Too many thumbnails are being made; try again shortly", RetryAfter: 2 * time.Second}
	case errors.Is(err, media.ErrRemoteTooLarge):
		return errorf(http.StatusBadGateway, "M_TOO_LARGE", "The remote media is larger than this server fetches")
	case errors.Is(err, media.ErrRemoteUnavailable) && errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusGatewayTimeout, "M_UNKNOWN", "The remote server did not answer in time")
	case errors.Is(err, media.ErrRemoteUnavailable):
		return errorf(http.StatusBadGateway, "M_UNKNOWN", "The remote server is unreachable or failing")
	case errors.Is(err, media.ErrPreviewsDisabled):
		return errorf(http.StatusNotFound, "M_UNRECOGNIZED", "URL previews are disabled on this server")
	case errors.Is(err, media.ErrPreviewBadURL):
		return errorf(http.StatusBadRequest, "M_INVALID_PARAM", "%s", detail(err, media.ErrPreviewBadURL))
	case errors.Is(err, media.ErrPreviewForbidden):
		return errorf(http.StatusForbidden, "M_FORBIDDEN", "This URL may not be previewed")
	case errors.Is(err, media.ErrPreviewUnavailable):
		return errorf(http.StatusBadGateway, "M_UNKNOWN", "The URL could not be previewed: the site is unreachable or failing")
	case errors.Is(err, matrix.ErrInvalid):
		return errorf(http.StatusBadRequest, "M_INVALID_PARAM", "%s", detail(err, matrix.ErrInvalid))
	case errors.Is(err, media.ErrRemoteDisabled):
		return errorf(http.StatusNotFound, "M_NOT_FOUND", "Remote media is not available from this server")
	case errors.Is(err, media.ErrNotFound):
		return errorf(http.StatusNotFound, "M_NOT_FOUND", "Media not found")
	case errors.Is(err, media.ErrQuarantinedContent):
		return errorf(http.StatusForbidden, "M_FORBIDDEN", "This content has been quarantined on this server")
	case errors.Is(err, media.ErrForbidden):
		return errorf(http.StatusForbidden, "M_FORBIDDEN", "This media ID was created by another user")
	case errors.Is(err, media.ErrExists):
		return errorf(http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA", "This media already has content")
	case errors.Is(err, media.ErrNotYetUploaded):
		return errorf(http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED", "The media has not been uploaded yet")
	case errors.Is(err, media.ErrPendingLimit):
		return &matrixError{Status: http.StatusTooManyRequests, Code: "M_LIMIT_EXCEEDED",
			Message: "Too many uploads created and not yet completed", RetryAfter: time.Minute}
	case errors.Is(err, ErrTooSlow):
		return errorf(http.StatusRequestTimeout, "M_UNKNOWN", "The request body arrived slower than this server accepts")
	case errors.Is(err, media.ErrTruncated):
		return errorf(http.StatusBadRequest, "M_UNKNOWN", "The request body ended before its declared length")
	case errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusGatewayTimeout, "M_UNKNOWN", "Timed out")
	}
	return errorf(http.StatusInternalServerError, "M_UNKNOWN", "Internal server error")
}

// quotaMessage says which limit an upload would pass: "upload quota
// exceeded: max_bytes 1000 (@u:example.org has 900)".
func quotaMessage(err error) string {
	var qe *media.QuotaError
	if errors.As(err, &qe) {
		return "upload quota exceeded: " + detail(qe, media.ErrQuotaExceeded)
	}
	return "upload quota exceeded"
}

// detail is err's message after its sentinel's ("sentinel: detail"), or
// the whole message when it does not start with it.
func detail(err, sentinel error) string {
	s := err.Error()
	if p := sentinel.Error() + ": "; len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// writeError answers err as Matrix JSON.
func writeError(w http.ResponseWriter, err error) *matrixError {
	me := toMatrix(err)
	body := map[string]any{"errcode": me.Code, "error": me.Message}
	for k, v := range me.Extra {
		body[k] = v
	}
	if me.RetryAfter > 0 {
		// Rounded up: a client waiting this long finds the request passes
		// (Retry-After: 0 would say "now").
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(me.RetryAfter.Seconds())), 10))
		body["retry_after_ms"] = int64(math.Ceil(float64(me.RetryAfter) / float64(time.Millisecond)))
	}
	writeJSON(w, me.Status, body)
	return me
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Del("Content-Disposition")
	h.Del("Content-Range")
	h.Del("ETag")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
