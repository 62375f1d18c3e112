package preview

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzExtractHTML: any bytes under any Content-Type give a page whose
// values are valid, bounded UTF-8, with no og:image* key, and whose URLs
// are absolute http(s) or empty.
func FuzzExtractHTML(f *testing.F) {
	f.Add([]byte(`<meta property="og:title" content="t"><meta property="og:image" content="/i.png">`), "text/html")
	f.Add([]byte("<title>Caf\xe9</title>"), "text/html; charset=iso-8859-1")
	f.Add([]byte(`<base href="//x/"><link rel="alternate" type="application/json+oembed" href="o">`), "")
	base, _ := url.Parse("https://example.org/a/b?c")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		p := extractHTML(body, contentType, base)
		for k, v := range p.og {
			if len(k) > maxKey || strings.HasPrefix(k, "og:image") || !strings.HasPrefix(k, "og:") && !ogVertical(k) {
				t.Errorf("key %q", k)
			}
			if v == "" || !utf8.ValidString(v) || utf8.RuneCountInString(v) > maxValue ||
				strings.ContainsFunc(v, func(r rune) bool { return dropControl(r) < 0 }) {
				t.Errorf("value of %s: %q", k, v)
			}
		}
		if d := p.og["og:description"]; utf8.RuneCountInString(d) > maxDescription {
			t.Errorf("description of %d runes", utf8.RuneCountInString(d))
		}
		if _, ok := dataImage(p.image); ok {
			p.image = ""
		}
		for _, u := range []string{p.image, p.oembed, p.og["og:url"]} {
			if u == "" {
				continue
			}
			pu, err := url.Parse(u)
			if err != nil || checkShape(pu) != nil {
				t.Errorf("URL %q", u)
			}
		}
	})
}

// TestProviderMatches: schemes match the URLs they name, on the host the
// URL really has.
func TestProviderMatches(t *testing.T) {
	p, err := Provider{Name: "YouTube", Endpoint: "https://www.youtube.com/oembed",
		Schemes: []string{"https://*.youtube.com/watch*", "https://youtu.be/*", "https://vimeo.com/album/*/video/*"}}.compile()
	if err != nil {
		t.Fatal(err)
	}
	for u, want := range map[string]bool{
		"https://www.youtube.com/watch?v=x":          true,
		"http://m.youtube.com/watch?v=x":             true,
		"https://youtu.be/abc":                       true,
		"https://youtu.be.evil.example/abc":          false,
		"https://youtube.com/watch?v=x":              false,
		"https://evil.example/?.youtube.com/watch":   false,
		"https://evil.example/x.youtube.com/watch":   false,
		"https://www.youtube.com.evil.example/watch": false,
		"https://www.youtube.com/embed/x":            false,
		"https://vimeo.com/album/1/2/video/3?x":      true,
		"https://vimeo.com/album/1/video":            false,
		"ftp://www.youtube.com/watch":                false,
	} {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.matches(pu); got != want {
			t.Errorf("%s: matches = %v, want %v", u, got, want)
		}
	}
}
