package httpapi

import "testing"

func TestContentDisposition(t *testing.T) {
	cases := []struct {
		ct, name string
		thumb    bool
		want     string
	}{
		{"image/png", "x.png", false, "inline; filename=x.png"},
		{"IMAGE/PNG; charset=x", "x.png", false, "inline; filename=x.png"},
		{"img/png", "x.png", false, "attachment; filename=x.png"},
		{"image/svg+xml", "a.svg", false, "attachment; filename=a.svg"},
		{"image/svg+xml", "a.svg", true, "inline; filename=a.svg"},
		{"text/html", "", false, "attachment"},
		{"text/plain", "other name.txt", false, "inline; filename*=utf-8''other%20name.txt"},
		{"text/html", "naïve.png", false, "attachment; filename*=utf-8''na%C3%AFve.png"},
		{"video/mp4", `a"b;c.mp4`, false, "inline; filename*=utf-8''a%22b%3Bc.mp4"},
		{"audio/x-flac", "a+b.flac", false, "inline; filename=a+b.flac"},
		{"application/octet-stream", "a b+c", false, "attachment; filename*=utf-8''a%20b+c"},
	}
	for _, c := range cases {
		if got := contentDisposition(c.ct, c.name, c.thumb); got != c.want {
			t.Errorf("contentDisposition(%q, %q, %v) = %q, want %q", c.ct, c.name, c.thumb, got, c.want)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain", "a%20b": "a b", "a%2Fb": "a/b", "%C3%AF": "ï", "bad%zz": "bad%zz", "end%2": "end%2", "%": "%",
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
