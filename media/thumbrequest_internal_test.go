package media

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"testing"

	"github.com/mxcas/mxcas/testkit"
	"github.com/mxcas/mxcas/thumbgen"
)

func TestParseThumbnailRequest(t *testing.T) {
	tests := []struct {
		query   string
		want    ThumbnailRequest
		wantErr error
		msg     string // the error's text after its sentinel's
	}{
		{query: "width=32&height=24", want: ThumbnailRequest{Width: 32, Height: 24, Method: thumbgen.Scale}},
		{query: "width=32&height=24&method=crop&animated=true", want: ThumbnailRequest{Width: 32, Height: 24, Method: thumbgen.Crop, Animated: true}},
		{query: "width=32&height=24&method=scale&animated=false", want: ThumbnailRequest{Width: 32, Height: 24, Method: thumbgen.Scale}},
		{query: "width=32&height=24&method=", want: ThumbnailRequest{Width: 32, Height: 24, Method: thumbgen.Scale}},
		{query: "height=24", wantErr: ErrMissingParam, msg: "width"},
		{query: "width=32", wantErr: ErrMissingParam, msg: "height"},
		{query: "", wantErr: ErrMissingParam, msg: "width"},
		{query: "width=x&method=zoom", wantErr: ErrMissingParam, msg: "height"}, // missing before invalid
		{query: "width=&height=24", wantErr: ErrBadParam, msg: "width must be a positive integer"},
		{query: "width=0&height=24", wantErr: ErrBadParam, msg: "width must be a positive integer"},
		{query: "width=-1&height=24", wantErr: ErrBadParam, msg: "width must be a positive integer"},
		{query: "width=1.5&height=24", wantErr: ErrBadParam, msg: "width must be a positive integer"},
		{query: "width=32&height=a", wantErr: ErrBadParam, msg: "height must be a positive integer"},
		{query: "width=32&height=99999999999999999999", wantErr: ErrBadParam, msg: "height must be a positive integer"},
		{query: "width=32&height=24&method=zoom", wantErr: ErrBadParam, msg: "method must be crop or scale"},
		{query: "width=32&height=24&method=Crop", wantErr: ErrBadParam, msg: "method must be crop or scale"},
		{query: "width=32&height=24&animated=maybe", wantErr: ErrBadParam, msg: "animated must be true or false"},
		{query: "width=32&height=24&animated=1", wantErr: ErrBadParam, msg: "animated must be true or false"},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseThumbnailRequest(q)
		if tt.wantErr == nil {
			if err != nil || got != tt.want {
				t.Errorf("%q: %+v, %v; want %+v", tt.query, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%q: %v, want %v", tt.query, err, tt.wantErr)
			continue
		}
		if want := tt.wantErr.Error() + ": " + tt.msg; err.Error() != want {
			t.Errorf("%q: %q, want %q", tt.query, err, want)
		}
	}
}

// TestThumbnailErrorsAreMediaSentinels: Store.Thumbnail's failures wrap
// this package's sentinels, which callers map without knowing thumbgen.
func TestThumbnailErrorsAreMediaSentinels(t *testing.T) {
	s := thumbStore(t, ThumbnailOptions{Disabled: true})
	up := func(id, ct string, data []byte) Media {
		t.Helper()
		rec, err := s.Upload(context.Background(), UploadInfo{MXC: mustMXC("s", id), ContentType: ct, Size: int64(len(data))}, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	png, err := os.ReadFile("../thumbgen/testdata/video-001.png")
	if err != nil {
		t.Fatal(err)
	}
	// A PNG whose pixel data is cut off after its header.
	corrupt := append(append([]byte{}, png[:200]...), bytes.Repeat([]byte{0xAB}, 100)...)
	img := up("img", "image/png", png)
	req := ThumbnailRequest{Width: 32, Height: 32, Method: thumbgen.Crop}
	for _, tt := range []struct {
		name string
		rec  Media
		req  ThumbnailRequest
		want error
	}{
		{"not an image", up("txt", "text/plain", []byte("hello")), req, ErrCannotThumbnail},
		{"corrupt image", up("corrupt", "image/png", corrupt), req, ErrCannotThumbnail},
		{"decompression bomb", up("bomb", "image/png", testkit.PNGBomb(30000, 30000)), req, ErrThumbnailTooLarge},
		{"zero width", img, ThumbnailRequest{Width: 0, Height: 32, Method: thumbgen.Crop}, ErrBadParam},
		{"unknown method", img, ThumbnailRequest{Width: 32, Height: 32, Method: "zoom"}, ErrBadParam},
	} {
		if _, _, err := s.Thumbnail(context.Background(), tt.rec, tt.req); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, _, err := s.Thumbnail(context.Background(), img, req); err != nil {
		t.Errorf("an image: %v", err)
	}
}
