package media_test

import (
	"context"
	"testing"
	"time"

	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// GC removes a preview record once the cache duration (24 h by default)
// has passed since the end of its hour, keeps newer ones, and counts what
// it removed; a request naming the expired hour then fetches the page
// again for the current hour.
func TestPreviewExpiredByGC(t *testing.T) {
	p, clock, s := pageAt1005(t, "first")
	first := clock.Now().UnixMilli()
	mustPreview(t, s, pageURL, 0) // the 10:00 hour, kept until Jan 3, 11:00

	clock.Advance(23 * time.Hour) // Jan 3, 09:05
	p.setPage(pageURL, titled("second"))
	second := clock.Now().UnixMilli()
	mustPreview(t, s, pageURL, 0) // 09:00 hour, kept until Jan 4, 10:00

	clock.Advance(time.Hour) // Jan 3, 10:05: nothing has expired yet
	st, err := s.GC(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.PreviewsExpired != 0 {
		t.Fatalf("GC within the cache duration: PreviewsExpired = %d, want 0", st.PreviewsExpired)
	}

	clock.Advance(time.Hour) // Jan 3, 11:05: the first hour's record has expired
	if st, err = s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st.PreviewsExpired != 1 {
		t.Fatalf("GC: PreviewsExpired = %d, want 1", st.PreviewsExpired)
	}
	if st, err = s.GC(context.Background()); err != nil || st.PreviewsExpired != 0 {
		t.Fatalf("second GC: PreviewsExpired = %d (%v), want 0: the record is gone", st.PreviewsExpired, err)
	}
	if got := mustPreview(t, s, pageURL, second)["og:title"]; got != "second" {
		t.Errorf("ts in the kept hour: og:title = %v, want second", got)
	}
	if n := p.pageN.Load(); n != 2 {
		t.Fatalf("%d fetches before the expired hour is asked for, want 2", n)
	}
	p.setPage(pageURL, titled("third"))
	if got := mustPreview(t, s, pageURL, first)["og:title"]; got != "third" {
		t.Errorf("ts in the expired hour: og:title = %v, want third (fetched again)", got)
	}
	if n := p.pageN.Load(); n != 3 {
		t.Errorf("%d fetches, want 3", n)
	}
}

// An expired record is not served even before a GC has removed it.
func TestPreviewExpiredBeforeGC(t *testing.T) {
	p := newTestPreviewer()
	p.setPage(pageURL, titled("old"))
	clock := testkit.NewClock(time.Date(2026, 1, 2, 10, 5, 0, 0, time.UTC))
	s := openStore(t, media.Options{Dir: t.TempDir(), Create: true, Chunker: smallParams, Now: clock.Now,
		Previews: p, PreviewCacheFor: 2 * time.Hour})
	first := clock.Now().UnixMilli()
	mustPreview(t, s, pageURL, 0)

	clock.Advance(2*time.Hour + 54*time.Minute) // 12:59: the 10:00 hour is kept until 13:00
	p.setPage(pageURL, titled("new"))
	if got := mustPreview(t, s, pageURL, first)["og:title"]; got != "old" {
		t.Errorf("within the cache duration: og:title = %v, want old", got)
	}
	clock.Advance(time.Minute) // 13:00
	if got := mustPreview(t, s, pageURL, first)["og:title"]; got != "new" {
		t.Errorf("expired hour: og:title = %v, want new (the current hour's)", got)
	}
}

// A cache duration under an hour is refused.
func TestPreviewCacheForUnderAnHour(t *testing.T) {
	o := media.Options{Dir: t.TempDir(), PreviewCacheFor: 59 * time.Minute}
	if err := o.Validate(); err == nil {
		t.Fatal("Validate accepted PreviewCacheFor of 59m")
	}
}
