package preview_test

import (
	"strings"
	"testing"
)

// TestPreviewPages previews HTML pages served on loopback: what a page
// says of itself, in the order of preference Synapse uses, decoded from
// its character set, with its image resolved.
func TestPreviewPages(t *testing.T) {
	const html = "text/html"
	long := strings.Repeat("word ", 300)
	tests := []pageTest{
		{"opengraph", html, `<html><head>
			<meta property="og:title" content=" The  title ">
			<meta property="og:description" content="What it is.">
			<meta name="og:site_name" content="Site">
			<meta property="og:image" content="/img/a.png">
			<meta property="og:image:width" content="100">
			<meta name="twitter:title" content="not this">
			<title>Not this either</title></head><body><p>text</p></body></html>`,
			map[string]string{"og:title": "The title", "og:description": "What it is.", "og:site_name": "Site"},
			"/img/a.png"},
		{"title and description only", html, `<title>Plain page</title>
			<meta name="description" content="Described.">
			<img src="/pixel.gif" width="1" height="1"><img src="small.png" width="20" height="20">
			<img src="big.png" width="200" height="100">`,
			map[string]string{"og:title": "Plain page", "og:description": "Described."}, "/p/big.png"},
		{"twitter fallback", html, `<meta name="twitter:card" content="summary">
			<meta name="twitter:title" content="Tweet title"><meta name="twitter:description" content="Tweet text">
			<meta name="twitter:image" content="https://cdn.example.org/t.jpg">`,
			map[string]string{"og:title": "Tweet title", "og:description": "Tweet text"},
			"https://cdn.example.org/t.jpg"},
		{"body text, heading, relative og:image under base", html, `<head><base href="/sub/dir/"></head>
			<body><nav>menu menu</nav><h1>Heading</h1><script>var x = 1;</script>
			<meta property="og:image" content="../pic.jpg"><p>First paragraph.</p><p>Second.</p></body>`,
			map[string]string{"og:title": "Heading", "og:description": "Heading\n\nFirst paragraph.\n\nSecond."},
			"/sub/pic.jpg"},
		{"data: image skipped", html, `<title>t</title><meta property="og:image" content="data:image/png;base64,AAAA">
			<link rel="shortcut icon" href="/favicon.ico">`,
			map[string]string{"og:title": "t"}, "/favicon.ico"},
		{"long description summarised", html, `<meta property="og:description" content="` + long + `">`,
			map[string]string{"og:description": strings.TrimSpace(long[:499]) + "…"}, ""},
		{"ISO-8859-1 by header", "text/html; charset=ISO-8859-1", "<title>Caf\xe9 cr\xe8me</title>",
			map[string]string{"og:title": "Café crème"}, ""},
		{"ISO-8859-1 by meta", html, `<meta charset="iso-8859-1"><title>Caf` + "\xe9</title>",
			map[string]string{"og:title": "Café"}, ""},
		{"Shift_JIS by header", "text/html; charset=Shift_JIS", "<title>\x93\xfa\x96\x7b\x8c\xea</title>",
			map[string]string{"og:title": "日本語"}, ""},
		{"Shift_JIS by http-equiv", html,
			`<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS"><title>` + "\x93\xfa\x96\x7b\x8c\xea</title>",
			map[string]string{"og:title": "日本語"}, ""},
		{"UTF-8 BOM beats the header", "text/html; charset=Shift_JIS", "\xef\xbb\xbf<title>日本語</title>",
			map[string]string{"og:title": "日本語"}, ""},
	}
	runPageTests(t, tests)
}
