package config

import (
	"strings"
	"testing"
	"time"
)

// url_previews.cache_duration is 24h by default, can be set, and is
// refused under an hour with its key and line.
func TestPreviewCacheDuration(t *testing.T) {
	if d := Default().URLPreviews.CacheDuration.Duration; d != 24*time.Hour {
		t.Errorf("default cache_duration = %v, want 24h", d)
	}
	c, err := Parse("[url_previews]\ncache_duration = \"36h\"\n", "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if d := c.URLPreviews.CacheDuration.Duration; d != 36*time.Hour {
		t.Errorf("cache_duration = %v, want 36h", d)
	}
	_, err = Parse("[url_previews]\ncache_duration = \"30m\"\n", "t.toml")
	if err == nil || !strings.Contains(err.Error(), "url_previews.cache_duration") || !strings.Contains(err.Error(), ":2") {
		t.Errorf("cache_duration 30m: %v, want an error naming url_previews.cache_duration at line 2", err)
	}
}
