package preview

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkExtractHTML extracts the preview of a 512 KiB article page: a
// head of OpenGraph and Twitter tags, then paragraphs, links and images,
// the shape of a news site's page. It is the CPU a preview costs beyond
// its fetch.
func BenchmarkExtractHTML(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>An article</title>
<meta property="og:title" content="An article"><meta property="og:description" content="What it is about">
<meta property="og:image" content="/img/lead.jpg"><meta name="twitter:card" content="summary_large_image">
<link rel="stylesheet" href="/s.css"><script>var x = 1;</script></head><body>`)
	for i := 0; sb.Len() < 512<<10; i++ {
		fmt.Fprintf(&sb, `<div class="p"><p>Paragraph %d with <a href="/l/%d">a link</a> and <em>some</em> text, `+
			`long enough to look like prose in a real article body.</p><img src="/i/%d.jpg" width="640" height="480"></div>`, i, i, i)
	}
	sb.WriteString(`</body></html>`)
	body := []byte(sb.String())
	base, _ := url.Parse("https://news.example/2026/12/article")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		p := extractHTML(body, "text/html; charset=utf-8", base)
		if p.og["og:title"] != "An article" {
			b.Fatalf("og:title %q", p.og["og:title"])
		}
	}
}
