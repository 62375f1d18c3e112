package media

import (
	"errors"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
)

// Every field survives the trip to the index's record and back.
func TestMediaRecordRoundTrip(t *testing.T) {
	want := Media{
		MXC: mustMXC("ours.test", "id"), Object: cas.Sum([]byte("x")), Size: 1, ContentType: "text/plain",
		UploadName: "x.txt", Uploader: "@u:ours.test", Created: 2, Quarantined: true, RequiresAuth: true,
		Remote: true, Pending: true, Expires: 3,
	}
	r := want.record()
	if r.Server != "ours.test" || r.MediaID != "id" {
		t.Errorf("record() key = %s/%s, want ours.test/id", r.Server, r.MediaID)
	}
	if got := mediaOf(want.MXC, r); got != want {
		t.Errorf("mediaOf(record()) = %+v, want %+v", got, want)
	}
	if got, err := scannedMedia(r); err != nil || got != want {
		t.Errorf("scannedMedia(record()) = %+v, %v; want %+v", got, err, want)
	}
	th := Thumbnail{Object: cas.Sum([]byte("t")), Size: 4, ContentType: "image/png", Width: 5, Height: 6}
	tr := th.record()
	if tr != (index.ThumbRecord{Object: th.Object, Size: 4, ContentType: "image/png", Width: 5, Height: 6}) {
		t.Errorf("Thumbnail.record() = %+v", tr)
	}
}

func TestScannedMediaInvalidKey(t *testing.T) {
	if _, err := scannedMedia(index.MediaRecord{Server: "..", MediaID: "x"}); !errors.Is(err, index.ErrCorruptRecord) {
		t.Errorf("scannedMedia(../x) = %v, want ErrCorruptRecord", err)
	}
}
