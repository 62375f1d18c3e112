package preview

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on what a preview carries (Synapse's: keys over 50 characters
// and values over 1000 are dropped, a description is cut at a word
// boundary near 500 characters).
const (
	maxKey         = 50
	maxValue       = 1000
	minDescription = 200
	maxDescription = 500
	// maxText bounds the body text collected for a description.
	maxText = 4 * maxDescription
)

// clean returns og with values made valid UTF-8 without control
// characters, trimmed and bounded; empty and overlong values, overlong
// keys and og:image* keys removed.
func clean(og map[string]string) map[string]string {
	out := make(map[string]string, len(og))
	for k, v := range og {
		if len(k) > maxKey || !utf8.ValidString(k) || k == "og:image" || strings.HasPrefix(k, "og:image:") {
			continue
		}
		v = strings.Map(dropControl, strings.ToValidUTF8(v, "\uFFFD"))
		if k == "og:description" {
			v = summarize(strings.Split(v, "\n\n"))
		} else {
			v = collapse(v)
		}
		if v != "" && utf8.RuneCountInString(v) <= maxValue {
			out[k] = v
		}
	}
	return out
}

// dropControl is a strings.Map function removing control characters but
// white space.
func dropControl(r rune) rune {
	if unicode.IsControl(r) && !unicode.IsSpace(r) {
		return -1
	}
	return r
}

// collapse trims s and turns every run of white space into one space.
func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

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

// paragraphs collects the text nodes of a page's body, each a paragraph,
// up to maxText bytes.
type paragraphs struct {
	done []string
	size int
}

// add adds text node t as a paragraph.
func (p *paragraphs) add(t string) {
	if p.size >= maxText {
		return
	}
	p.size += len(t)
	if s := collapse(t); s != "" {
		p.done = append(p.done, s)
	}
}

func (p *paragraphs) summary() string { return summarize(p.done) }

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

// resolveImage returns the first candidate that resolves, or is a data:
// URL of an image (dataImage).
func resolveImage(base *url.URL, candidates ...string) string {
	for _, c := range candidates {
		if _, ok := dataImage(c); ok {
			return strings.TrimSpace(c)
		}
		if u := resolve(base, c); u != "" {
			return u
		}
	}
	return ""
}
