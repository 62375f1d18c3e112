package media

import (
	"fmt"

	"github.com/mxcas/mxcas/preview"
	"github.com/mxcas/mxcas/thumbgen"
)

// The settings a running store takes without a restart (a configuration
// reload). Each setter swaps one pointer: calls in flight finish with what
// they started with, later ones see the new value; nothing on the request
// path takes a lock for them.

// previewerBox holds a Previewer (an interface) for an atomic.Pointer; p
// nil: previews are off.
type previewerBox struct{ p preview.Previewer }

// SetPreviewer replaces Options.Previews: nil turns URL previews off
// (ErrPreviewsDisabled), a previewer turns them on or changes how pages
// are fetched (allowed and denied networks and domains...). Remembered
// failures are forgotten, so a URL the old previewer refused is tried
// again; stored previews stay. Safe for concurrent use.
func (s *Store) SetPreviewer(p preview.Previewer) {
	s.previewer.Store(&previewerBox{p})
	s.previews.forgetFailures()
}

// SetThumbnailSizes replaces ThumbnailOptions.Sizes, the sizes made in the
// background after an image upload (nil or empty: DefaultThumbnailSizes).
// Jobs already queued make the sizes they were made with; thumbnails made
// before stay and are still served. A size with a width or height under 1
// or a method other than crop or scale is refused and nothing changes.
// sizes must not be changed afterwards. Safe for concurrent use.
func (s *Store) SetThumbnailSizes(sizes []ThumbnailSize) error {
	for _, z := range sizes {
		if _, err := thumbgen.ParseMethod(string(z.Method)); err != nil || z.Width < 1 || z.Height < 1 {
			return fmt.Errorf("media: thumbnail size %dx%d %q: want width and height of at least 1, method crop or scale", z.Width, z.Height, z.Method)
		}
	}
	if len(sizes) == 0 {
		sizes = DefaultThumbnailSizes
	}
	s.thumbs.sizes.Store(&sizes)
	return nil
}
