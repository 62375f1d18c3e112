package media_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"path/filepath"
	"testing"

	"github.com/mxcas/mxcas/media"
)

// photoJPEG is a w×h JPEG with gradients and fine detail, like a photo as
// far as decoding and resampling cost go.
func photoJPEG(tb testing.TB, w, h int) []byte {
	tb.Helper()
	m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for y := range h {
		for x := range w {
			m.Y[y*m.YStride+x] = uint8(x*255/w + (x*y)%23)
		}
	}
	for i := range m.Cb {
		m.Cb[i], m.Cr[i] = uint8(i%251), uint8(i/m.CStride%241)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 90}); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// withComment returns src, a JPEG, with a comment segment after its SOI
// marker: other content, the same image.
func withComment(src []byte, text string) []byte {
	seg := append([]byte{0xff, 0xfe, 0, byte(len(text) + 2)}, text...)
	return append(append(append([]byte{}, src[:2]...), seg...), src[2:]...)
}

// BenchmarkPregenerate12MP pregenerates the default sizes of a 4000x3000
// JPEG; each iteration uploads (untimed) other content, so nothing is
// stored yet.
func BenchmarkPregenerate12MP(b *testing.B) {
	s := openStore(b, media.Options{Create: true, Dir: filepath.Join(b.TempDir(), "data"), Thumbnails: media.ThumbnailOptions{Disabled: true}})
	photo := photoJPEG(b, 4000, 3000)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		data := withComment(photo, fmt.Sprint(i))
		info := media.UploadInfo{MXC: mxc(fmt.Sprint("p", i)), ContentType: "image/jpeg", Size: int64(len(data))}
		rec, err := s.Upload(context.Background(), info, bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.Pregenerate(context.Background(), rec); err != nil {
			b.Fatal(err)
		}
	}
}
