package preview

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// Bounds on what a preview carries (Synapse's: keys over 50 characters are
// dropped, a description is cut at a word boundary near 500 characters;
// other values are cut at 1000 characters rather than dropped).
const (
	maxKey         = 50
	maxValue       = 1000
	minDescription = 200
	maxDescription = 500
	// maxText bounds the body text collected for a description.
	maxText = 4 * maxDescription
)

// clean returns og with values made valid UTF-8, trimmed and bounded,
// empty values, overlong keys and og:image* keys removed.
func clean(og map[string]string) map[string]string {
	out := make(map[string]string, len(og))
	for k, v := range og {
		if len(k) > maxKey || !utf8.ValidString(k) || k == "og:image" || strings.HasPrefix(k, "og:image:") {
			continue
		}
		v = strings.ToValidUTF8(v, "\uFFFD")
		if k == "og:description" {
			v = summarize(strings.Split(v, "\n\n"))
		} else {
			v = truncate(collapse(v), maxValue)
		}
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// collapse trims s and turns every run of white space into one space.
func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// truncate cuts s to at most n runes, marking a cut with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// summarize joins paragraphs until there are at least minDescription
// runes, and cuts the result at a word boundary before maxDescription
// (with an ellipsis), as Synapse's summarize_paragraphs does.
func summarize(paras []string) string {
	var parts []string
	n := 0
	for _, p := range paras {
		if n >= minDescription {
			break
		}
		if p = collapse(p); p != "" {
			parts = append(parts, p)
			n += utf8.RuneCountInString(p) + 2
		}
	}
	d := strings.Join(parts, "\n\n")
	if utf8.RuneCountInString(d) <= maxDescription {
		return d
	}
	var b strings.Builder
	count := 0
	for i, w := range strings.Fields(d) {
		wl := utf8.RuneCountInString(w)
		if i > 0 {
			wl++
		}
		if count+wl >= maxDescription && count >= minDescription {
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
		count += wl
		if count >= maxDescription {
			break
		}
	}
	r := []rune(b.String())
	if len(r) > maxDescription-1 {
		r = r[:maxDescription-1]
	}
	return strings.TrimSpace(string(r)) + "…"
}

// paragraphs collects the text of a page's body, paragraph by paragraph,
// up to maxText bytes.
type paragraphs struct {
	done []string
	cur  strings.Builder
	size int
}

func (p *paragraphs) add(t string) {
	if p.size >= maxText {
		return
	}
	p.cur.WriteString(t)
	p.size += len(t)
}

func (p *paragraphs) flush() {
	if s := collapse(p.cur.String()); s != "" {
		p.done = append(p.done, s)
	}
	p.cur.Reset()
}

func (p *paragraphs) summary() string {
	p.flush()
	return summarize(p.done)
}

// resolve returns ref resolved against base when that gives an absolute
// http or https URL without userinfo, else "" (data: URIs included).
func resolve(base *url.URL, ref string) string {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return ""
	}
	u, err := url.Parse(ref)
	if err != nil {
		return ""
	}
	if base != nil {
		u = base.ResolveReference(u)
	}
	if checkShape(u) != nil {
		return ""
	}
	return u.String()
}

// resolveImage returns the first candidate that resolves.
func resolveImage(base *url.URL, candidates ...string) string {
	for _, c := range candidates {
		if u := resolve(base, c); u != "" {
			return u
		}
	}
	return ""
}
