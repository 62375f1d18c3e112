package media

import (
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/mxcas/mxcas/preview"
)

// TestSetThumbnailSizes checks that new jobs make the new sizes, that a
// bad size is refused and changes nothing, and that an empty list means
// the defaults.
func TestSetThumbnailSizes(t *testing.T) {
	s := thumbStore(t, ThumbnailOptions{})
	specs := func() []string {
		var out []string
		for spec := range s.thumbs.newJob(Media{}).sizes {
			out = append(out, spec)
		}
		slices.Sort(out)
		return out
	}
	defaults := specs()
	if len(defaults) != len(DefaultThumbnailSizes) {
		t.Fatalf("default job sizes %q", defaults)
	}
	if err := s.SetThumbnailSizes([]ThumbnailSize{{64, 64, "crop"}}); err != nil {
		t.Fatal(err)
	}
	one := specs()
	if len(one) != 1 {
		t.Errorf("after SetThumbnailSizes(64x64 crop): job sizes %q, want one", one)
	}
	if err := s.SetThumbnailSizes([]ThumbnailSize{{64, 64, "stretch"}}); err == nil {
		t.Error("method stretch accepted")
	}
	if err := s.SetThumbnailSizes([]ThumbnailSize{{0, 64, "crop"}}); err == nil {
		t.Error("width 0 accepted")
	}
	if got := specs(); !slices.Equal(got, one) {
		t.Errorf("a refused change changed the sizes: %q, want %q", got, one)
	}
	if err := s.SetThumbnailSizes(nil); err != nil {
		t.Fatal(err)
	}
	if got := specs(); !slices.Equal(got, defaults) {
		t.Errorf("SetThumbnailSizes(nil): %q, want the defaults %q", got, defaults)
	}
}

// TestSetPreviewer checks that previews turn on and off with the
// previewer and that remembered failures are forgotten.
func TestSetPreviewer(t *testing.T) {
	s := thumbStore(t, ThumbnailOptions{})
	if s.PreviewsEnabled() {
		t.Fatal("previews on without a previewer")
	}
	p, err := preview.New(preview.Options{DialContext: (&net.Dialer{}).DialContext})
	if err != nil {
		t.Fatal(err)
	}
	s.previews.fail("hs/https://example.org/", ErrPreviewForbidden, s.opts.Now())
	s.SetPreviewer(p)
	if !s.PreviewsEnabled() {
		t.Error("SetPreviewer(p): previews still off")
	}
	if err := s.previews.failure("hs/https://example.org/", s.opts.Now()); err != nil {
		t.Errorf("a failure of the old previewer is still answered: %v", err)
	}
	s.SetPreviewer(nil)
	if _, err := s.PreviewURL(t.Context(), "hs", "https://example.org/", 0); !errors.Is(err, ErrPreviewsDisabled) {
		t.Errorf("SetPreviewer(nil): PreviewURL = %v, want ErrPreviewsDisabled", err)
	}
}
