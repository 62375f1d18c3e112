package preview

import (
	"io"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// page is what an HTML document says of itself.
type page struct {
	og     map[string]string // cleaned og: keys, never og:image*
	image  string            // absolute http(s) URL, a data: URL of an image, or ""
	oembed string            // absolute http(s) oEmbed discovery URL, or ""
}

// maxTags bounds the og: and twitter: tags taken from one page (Synapse's
// limit); later ones are ignored.
const maxTags = 50

// extractHTML reads an HTML document (decoded as decodeHTML says) and
// returns its preview data: OpenGraph tags, Twitter card tags as fallbacks, then <title> or the
// first heading, <meta name=description> or the first text of the body, and
// the first meaningful image (og:image, microdata, the largest <img> over
// 10x10, any <img>, the icon), resolved against pageURL or <base href>.
// It never fails: a document with nothing in it gives an empty page.
func extractHTML(body []byte, contentType string, pageURL *url.URL) page {
	s := newScan()
	s.run(decodeHTML(body, contentType))
	return s.page(pageURL)
}

// scan collects candidates in one pass of the tokenizer.
type scan struct {
	og, twitter     map[string]string
	base            string
	title, heading  string
	metaDescription string
	itempropImage   string
	bestImage       string
	bestArea        float64
	firstImage      string
	icon            string
	oembed          string
	text            paragraphs

	stack     []string // open elements
	skipped   int      // how many of stack hide their text
	capturing string   // "title" or "h1".."h3" while its text is taken
	captured  strings.Builder
}

func newScan() *scan {
	return &scan{og: map[string]string{}, twitter: map[string]string{}}
}

// maxDepth bounds the element stack; text deeper than it is ignored.
const maxDepth = 512

func (s *scan) run(r io.Reader) {
	z := html.NewTokenizer(r)
	for {
		switch z.Next() {
		case html.ErrorToken:
			return
		case html.StartTagToken:
			s.start(z.Token(), false)
		case html.SelfClosingTagToken:
			s.start(z.Token(), true)
		case html.EndTagToken:
			name, _ := z.TagName()
			s.end(string(name))
		case html.TextToken:
			s.onText(string(z.Text()))
		}
	}
}

// hidden are the elements whose text is not the page's description
// (Synapse's list, plus template and title).
var hidden = map[string]bool{
	"head": true, "header": true, "nav": true, "aside": true, "footer": true, "script": true,
	"noscript": true, "style": true, "svg": true, "iframe": true, "video": true, "canvas": true,
	"picture": true, "template": true, "title": true, "select": true, "textarea": true,
}

// hiddenRoles are ARIA roles whose elements are not meant for reading.
var hiddenRoles = map[string]bool{"directory": true, "menu": true, "menubar": true, "toolbar": true}

// void elements have no end tag.
var void = map[string]bool{
	"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true, "img": true,
	"input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true,
}

func (s *scan) start(t html.Token, selfClosing bool) {
	a := attrs(t.Attr)
	switch t.Data {
	case "meta":
		s.meta(a)
	case "base":
		if s.base == "" {
			s.base = a["href"]
		}
	case "link":
		s.link(a)
	case "img":
		s.img(a)
	case "title", "h1", "h2", "h3":
		if s.capturing == "" && !selfClosing && (t.Data == "title" && s.title == "" || t.Data != "title" && s.heading == "") {
			s.capturing = t.Data
			s.captured.Reset()
		}
	}
	if selfClosing || void[t.Data] || len(s.stack) >= maxDepth {
		return
	}
	s.stack = append(s.stack, t.Data)
	if hidden[t.Data] || hiddenRoles[strings.ToLower(a["role"])] {
		s.stack[len(s.stack)-1] = "\x00" + t.Data // marks a hiding element
		s.skipped++
	}
}

func (s *scan) end(name string) {
	if name == s.capturing {
		v := collapse(s.captured.String())
		if name == "title" {
			s.title = v
		} else {
			s.heading = v
		}
		s.capturing = ""
	}
	for i := len(s.stack) - 1; i >= 0; i-- {
		if strings.TrimPrefix(s.stack[i], "\x00") != name {
			continue
		}
		for _, e := range s.stack[i:] {
			if strings.HasPrefix(e, "\x00") {
				s.skipped--
			}
		}
		s.stack = s.stack[:i]
		return
	}
}

func (s *scan) onText(t string) {
	if s.capturing != "" && s.captured.Len() <= utf8.UTFMax*maxValue {
		s.captured.WriteString(t)
	}
	if s.skipped == 0 && len(s.stack) < maxDepth {
		// Every text node is a paragraph of its own (Synapse's rule).
		s.text.add(t)
	}
}

func (s *scan) meta(a map[string]string) {
	content := strings.TrimSpace(a["content"])
	if content == "" {
		return
	}
	for _, key := range []string{a["property"], a["name"]} {
		key = strings.ToLower(strings.TrimSpace(key))
		switch {
		case strings.HasPrefix(key, "og:"), ogVertical(key):
			setFirst(s.og, key, content)
		case strings.HasPrefix(key, "twitter:"):
			setFirst(s.twitter, key, content)
		}
	}
	if s.metaDescription == "" && strings.Contains(strings.ToLower(a["name"]), "description") {
		s.metaDescription = content
	}
	if s.itempropImage == "" && strings.Contains(strings.ToLower(a["itemprop"]), "image") {
		s.itempropImage = content
	}
}

// ogVertical reports whether key is in the namespace of one of
// OpenGraph's object types (article:published_time, profile:username,
// ...), which Synapse passes on too.
func ogVertical(key string) bool {
	ns, _, ok := strings.Cut(key, ":")
	switch ns {
	case "article", "profile", "book", "music", "video":
		return ok
	}
	return false
}

// setFirst keeps the first value of a key (the OpenGraph rule: the first
// og:image is the main one), and at most maxTags keys.
func setFirst(m map[string]string, key, value string) {
	if _, ok := m[key]; !ok && len(m) < maxTags {
		m[key] = value
	}
}

func (s *scan) link(a map[string]string) {
	href := strings.TrimSpace(a["href"])
	if href == "" {
		return
	}
	rels := strings.Fields(strings.ToLower(a["rel"]))
	for _, rel := range rels {
		switch {
		case (rel == "alternate" || rel == "alternative") &&
			strings.EqualFold(strings.TrimSpace(a["type"]), "application/json+oembed"):
			if s.oembed == "" {
				s.oembed = href
			}
		case rel == "icon" && s.icon == "":
			s.icon = href
		}
	}
}

func (s *scan) img(a map[string]string) {
	src := strings.TrimSpace(a["src"])
	if src == "" {
		return
	}
	if s.firstImage == "" {
		s.firstImage = src
	}
	w, errW := strconv.ParseFloat(strings.TrimSpace(a["width"]), 64)
	h, errH := strconv.ParseFloat(strings.TrimSpace(a["height"]), 64)
	if errW == nil && errH == nil && w > 10 && h > 10 && w*h > s.bestArea {
		s.bestImage, s.bestArea = src, w*h
	}
}

// page assembles the scan in Synapse's order of preference.
func (s *scan) page(pageURL *url.URL) page {
	base := pageURL
	if s.base != "" && pageURL != nil {
		if b, err := pageURL.Parse(strings.TrimSpace(s.base)); err == nil && checkShape(b) == nil {
			base = b
		}
	}
	og := s.og
	for k, v := range s.twitter {
		key := "og:" + strings.TrimPrefix(k, "twitter:")
		switch k {
		case "twitter:card", "twitter:creator":
			continue
		case "twitter:site":
			key = "og:site_name" // Synapse's mapping
		}
		if _, ok := og[key]; !ok {
			og[key] = v
		}
	}
	if og["og:title"] == "" {
		og["og:title"] = firstOf(s.title, s.heading)
	}
	if og["og:description"] == "" {
		og["og:description"] = firstOf(s.metaDescription, s.text.summary())
	}
	image := resolveImage(base, og["og:image"], og["og:image:secure_url"], og["og:image:url"],
		s.itempropImage, s.bestImage, s.firstImage, s.icon)
	if u := og["og:url"]; u != "" {
		og["og:url"] = resolve(base, u)
	}
	return page{og: clean(og), image: image, oembed: resolve(base, s.oembed)}
}

func attrs(as []html.Attribute) map[string]string {
	m := make(map[string]string, len(as))
	for _, a := range as {
		if _, ok := m[a.Key]; !ok {
			m[a.Key] = a.Val
		}
	}
	return m
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
