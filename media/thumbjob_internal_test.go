package media

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/mxcas/mxcas/thumbgen"
)

// TestPregenerationDecodesOnce: one upload's pregeneration reads and
// decodes its source once for every configured size.
func TestPregenerationDecodesOnce(t *testing.T) {
	s := thumbStore(t, ThumbnailOptions{})
	rec := uploadFile(t, s, "a", "../thumbgen/testdata/video-001.jpeg", "image/jpeg")
	s.WaitThumbnailQueue()
	if n := s.thumbs.decodes.Load(); n != 1 {
		t.Errorf("pregeneration decoded the source %d times, want 1", n)
	}
	if n := s.thumbs.made.Load(); n != int64(len(DefaultThumbnailSizes)) {
		t.Errorf("pregenerated %d sizes, want %d", n, len(DefaultThumbnailSizes))
	}
	for _, z := range DefaultThumbnailSizes {
		_, spec := s.thumbs.thumbSpec(ThumbnailRequest{Width: z.Width, Height: z.Height, Method: z.Method}.thumbgen())
		if _, err := s.readThumbnail(rec.Object, spec); err != nil {
			t.Errorf("size %s not stored: %v", spec, err)
		}
	}
}

// holdJobs makes the jobs of the media IDs in held wait, once running,
// until release is closed; started receives each held job's ID as it
// starts, joined the spec of each request that joins a job.
func holdJobs(s *Store, held ...string) (started chan string, joined chan string, release chan struct{}) {
	started, joined, release = make(chan string, len(held)), make(chan string, 16), make(chan struct{})
	s.thumbs.hookRun = func(rec Media) {
		for _, id := range held {
			if rec.MXC.MediaID() == id {
				started <- id
				<-release
			}
		}
	}
	s.thumbs.hookJoin = func(_ Media, spec string) { joined <- spec }
	return started, joined, release
}

// TestRequestJoinsPregeneration: a request for a size the upload's job is
// making waits for that job and gets its bytes; the source is decoded once.
func TestRequestJoinsPregeneration(t *testing.T) {
	s := thumbStore(t, ThumbnailOptions{})
	started, joined, release := holdJobs(s, "a")
	rec := uploadFile(t, s, "a", "../thumbgen/testdata/video-001.jpeg", "image/jpeg")
	<-started // the job is running, held before it reads the source
	req := ThumbnailRequest{Width: 96, Height: 96, Method: "crop"}
	got := make(chan []byte, 1)
	go func() {
		b, _ := readThumb(t, s, rec, req)
		got <- b
	}()
	if spec := <-joined; spec != "96x96/crop/0" {
		t.Errorf("joined %s, want 96x96/crop/0", spec)
	}
	if n := s.thumbs.decodes.Load(); n != 0 {
		t.Errorf("%d decodes while the job is held, want 0", n)
	}
	close(release)
	b := <-got
	s.WaitThumbnailQueue()
	if n := s.thumbs.decodes.Load(); n != 1 {
		t.Errorf("%d decodes, want 1: the request made its own", n)
	}
	if stored, _ := readThumb(t, s, rec, req); len(b) == 0 || !bytes.Equal(b, stored) {
		t.Error("the joined request got other bytes than were stored")
	}
}

// TestRequestStartsQueuedJob: a request for an upload whose job is still
// queued behind others runs that job at once; the queue worker then skips
// it.
func TestRequestStartsQueuedJob(t *testing.T) {
	s := thumbStore(t, ThumbnailOptions{})
	started, joined, release := holdJobs(s, "a")
	uploadFile(t, s, "a", "../thumbgen/testdata/video-001.jpeg", "image/jpeg")
	<-started // the worker is busy with a
	uploadFile(t, s, "b", "../thumbgen/testdata/video-001.progressive.jpeg", "image/jpeg")
	c := uploadFile(t, s, "c", "../thumbgen/testdata/video-005.gray.jpeg", "image/jpeg")
	b, tr := readThumb(t, s, c, ThumbnailRequest{Width: 32, Height: 32, Method: "crop"})
	if len(b) == 0 || tr.Width != 32 || tr.Height != 32 {
		t.Fatalf("thumbnail of c: %d bytes, %+v", len(b), tr)
	}
	<-joined
	// a is still held and b still queued: only c was decoded, by its job.
	if n := s.thumbs.decodes.Load(); n != 1 {
		t.Errorf("%d decodes before the queue moved, want 1", n)
	}
	close(release)
	s.WaitThumbnailQueue()
	if n := s.thumbs.decodes.Load(); n != 3 {
		t.Errorf("%d decodes for three uploads, want 3", n)
	}
	// Asked again, nothing is left to make.
	if err := s.Pregenerate(context.Background(), c); err != nil || s.thumbs.decodes.Load() != 3 {
		t.Errorf("Pregenerate of a done upload: %v, %d decodes, want none more", err, s.thumbs.decodes.Load())
	}
}

// TestPregenerationOverBudgetMakesEachSize: when the sizes together need
// more memory than the budget, the job makes those that fit one at a time.
func TestPregenerationOverBudgetMakesEachSize(t *testing.T) {
	const path = "../thumbgen/testdata/video-001.jpeg"
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := thumbgen.Sniff(src, thumbgen.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var all []thumbgen.Request
	for _, z := range DefaultThumbnailSizes {
		all = append(all, ThumbnailRequest{Width: z.Width, Height: z.Height, Method: z.Method}.thumbgen())
	}
	one := int64(len(src)) + thumbgen.DecodeMemory(info, all[1])
	s := thumbStore(t, ThumbnailOptions{MemoryBudget: one, Disabled: true})
	if int64(len(src))+thumbgen.DecodeMemoryAll(info, all) <= one {
		t.Fatal("the set fits the budget: the test needs another budget")
	}
	rec := uploadFile(t, s, "a", path, "image/jpeg")
	s.Pregenerate(context.Background(), rec)
	_, spec := s.thumbs.thumbSpec(all[1])
	if _, err := s.readThumbnail(rec.Object, spec); err != nil {
		t.Errorf("size %s, which fits the budget alone, not made: %v", spec, err)
	}
}

// TestJobMakesAwaitedSizeFirst: a job makes the size a client waits for
// before the sizes nobody has asked for yet (by default it goes largest
// first, and the smallest would come last).
func TestJobMakesAwaitedSizeFirst(t *testing.T) {
	s := thumbStore(t, ThumbnailOptions{})
	started, joined, release := holdJobs(s, "a")
	var made []string // written by the job's goroutine, read after it is done
	s.thumbs.hookMade = func(spec string) { made = append(made, spec) }
	rec := uploadFile(t, s, "a", writeGradientJPEG(t, 1000, 800), "image/jpeg")
	<-started
	req := ThumbnailRequest{Width: 32, Height: 32, Method: "crop"}
	got := make(chan []byte, 1)
	go func() {
		b, _ := readThumb(t, s, rec, req)
		got <- b
	}()
	<-joined
	close(release)
	if b := <-got; len(b) == 0 {
		t.Fatal("the waiting request got no thumbnail")
	}
	s.WaitThumbnailQueue()
	if len(made) != len(DefaultThumbnailSizes) {
		t.Fatalf("made %v, want all %d sizes", made, len(DefaultThumbnailSizes))
	}
	if made[0] != "32x32/crop/0" {
		t.Errorf("made %v: the awaited 32x32 crop was not first", made)
	}
}

// writeGradientJPEG writes a w×h JPEG large enough that every default size
// is made from it (none is the source itself) and returns its path.
func writeGradientJPEG(t *testing.T, w, h int) string {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "gradient.jpeg")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
