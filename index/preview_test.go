package index

import (
	"errors"
	"testing"
)

// A preview key too short to hold its hour is a corrupt record, not a panic.
func TestParsePreviewKeyCorrupt(t *testing.T) {
	for _, k := range []string{"l/noslash", "l/s/\x00short", "l/s/u1234567890"} {
		if _, _, _, err := parsePreviewKey([]byte(k)); !errors.Is(err, ErrCorruptRecord) {
			t.Errorf("parsePreviewKey(%q) = %v, want ErrCorruptRecord", k, err)
		}
	}
}
