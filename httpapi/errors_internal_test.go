package httpapi

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/mxcas/mxcas/media"
)

// TestUnavailableIs503: the object store or the index's database being
// down is 503 with Retry-After, never a 500.
func TestUnavailableIs503(t *testing.T) {
	for _, err := range []error{media.ErrStorageUnavailable, media.ErrIndexUnavailable} {
		me := toMatrix(fmt.Errorf("media: open x: %w", err))
		if me.Status != http.StatusServiceUnavailable || me.Code != "M_UNKNOWN" || me.RetryAfter <= 0 {
			t.Errorf("%v: %+v, want 503 M_UNKNOWN with Retry-After", err, me)
		}
	}
}
