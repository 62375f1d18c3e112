package preview

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// Provider is an oEmbed provider: URLs matching one of Schemes are
// previewed through Endpoint instead of their page.
type Provider struct {
	Name string `json:"name"`
	// Schemes are URL globs as oembed.com's providers list writes them
	// ("https://*.youtube.com/watch*"): the host (port included) is
	// matched by path.Match, the path and query with "*" matching any
	// characters; http and https match each other.
	Schemes []string `json:"schemes"`
	// Endpoint is the provider's JSON endpoint; "{format}" in it becomes
	// "json". The URL and format=json are added to its query.
	Endpoint string `json:"endpoint"`
}

//go:embed providers.json
var providersJSON []byte

// DefaultProviders returns a fresh copy of the shipped provider list:
// YouTube, Vimeo, Twitter/X, Flickr, SoundCloud, Spotify, Reddit, TikTok.
func DefaultProviders() []Provider {
	var ps []Provider
	if err := json.Unmarshal(providersJSON, &ps); err != nil {
		panic("preview: providers.json: " + err.Error()) // a build that cannot happen: the file is tested
	}
	return ps
}

// provider is a Provider ready to match: its endpoint parsed, its
// schemes compiled.
type provider struct {
	endpoint *url.URL
	schemes  []scheme
}

// scheme is one URL glob: the host by path.Match, the rest (path and
// query) by a regular expression in which "*" is ".*".
type scheme struct {
	host string
	rest *regexp.Regexp
}

func (p Provider) compile() (provider, error) {
	e, err := url.Parse(strings.ReplaceAll(p.Endpoint, "{format}", "json"))
	if err != nil || checkShape(e) != nil {
		return provider{}, fmt.Errorf("preview: oEmbed provider %q: endpoint %q is not an http(s) URL", p.Name, p.Endpoint)
	}
	c := provider{endpoint: e}
	for _, s := range p.Schemes {
		sch, r, ok := strings.Cut(s, "://")
		host, rest, _ := strings.Cut(r, "/")
		if !ok || host == "" || !webScheme(sch) {
			return provider{}, fmt.Errorf("preview: oEmbed provider %q: scheme %q is not an http(s) URL glob", p.Name, s)
		}
		host = strings.ToLower(host)
		if _, err := path.Match(host, ""); err != nil {
			return provider{}, fmt.Errorf("preview: oEmbed provider %q: scheme %q: %v", p.Name, s, err)
		}
		re := strings.ReplaceAll(regexp.QuoteMeta("/"+rest), `\*`, ".*")
		c.schemes = append(c.schemes, scheme{host: host, rest: regexp.MustCompile("^" + re + "$")})
	}
	return c, nil
}

// compileProviders compiles ps, or reports the first that does not.
func compileProviders(ps []Provider) ([]provider, error) {
	cs := make([]provider, 0, len(ps))
	for _, p := range ps {
		c, err := p.compile()
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// matches reports whether u matches one of p's schemes.
func (p provider) matches(u *url.URL) bool {
	if !webScheme(u.Scheme) {
		return false
	}
	host := strings.ToLower(u.Host)
	rest := u.EscapedPath()
	if rest == "" {
		rest = "/"
	}
	if u.RawQuery != "" {
		rest += "?" + u.RawQuery
	}
	for _, s := range p.schemes {
		if ok, _ := path.Match(s.host, host); ok && s.rest.MatchString(rest) {
			return true
		}
	}
	return false
}

func webScheme(s string) bool { return strings.EqualFold(s, "http") || strings.EqualFold(s, "https") }

// providerEndpoint returns the oEmbed URL to ask about u, or nil when no
// provider matches.
func (f *Fetcher) providerEndpoint(u *url.URL) *url.URL {
	for _, p := range f.providers {
		if !p.matches(u) {
			continue
		}
		e := *p.endpoint
		q := e.Query()
		q.Set("url", u.String())
		q.Set("format", "json")
		e.RawQuery = q.Encode()
		return &e
	}
	return nil
}

// oembed is an oEmbed answer turned into OpenGraph.
type oembed struct {
	og     map[string]string
	image  string // absolute http(s), or ""
	author string
}

// parseOEmbed reads an oEmbed JSON answer as Synapse does: title →
// og:title, provider_name → og:site_name, thumbnail_url (or a photo's url)
// → the image, author_name kept as the title of last resort, a rich or
// video answer's html read for a description and image (its HTML is never
// passed on). endpoint resolves relative URLs.
func parseOEmbed(body []byte, endpoint *url.URL) (oembed, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return oembed{}, fmt.Errorf("%w: oEmbed answer: %v", ErrUnavailable, err)
	}
	if v, ok := m["version"]; ok && v != "1.0" && v != 1.0 {
		return oembed{}, fmt.Errorf("%w: oEmbed version %v", ErrUnavailable, v)
	}
	str := func(k string) string { s, _ := m[k].(string); return strings.TrimSpace(s) }
	og := map[string]string{}
	if t := str("title"); t != "" {
		og["og:title"] = html.UnescapeString(t)
	}
	if n := str("provider_name"); n != "" {
		og["og:site_name"] = n
	}
	image := str("thumbnail_url")
	switch str("type") {
	case "photo":
		image = firstOf(str("url"), image)
	case "video", "rich":
		if str("type") == "video" {
			og["og:type"] = "video.other"
		}
		if h := str("html"); h != "" {
			p := extractHTML([]byte(h), "text/html; charset=utf-8", endpoint)
			if d := p.og["og:description"]; d != "" {
				og["og:description"] = d
			}
			image = firstOf(image, p.image)
		}
	case "link":
		og["og:type"] = "website"
	}
	return oembed{og: clean(og), image: resolve(endpoint, image), author: collapse(str("author_name"))}, nil
}

// fetchOEmbed asks endpoint (a provider's or one a page named) under the
// fetcher's rules.
func (f *Fetcher) fetchOEmbed(ctx context.Context, endpoint *url.URL) (oembed, error) {
	resp, err := f.get(ctx, endpoint, "application/json")
	if err != nil {
		return oembed{}, err
	}
	defer resp.body.Close()
	body, truncated, err := f.readCapped(resp.body, min(f.o.MaxBytes, maxOEmbed))
	if err != nil {
		return oembed{}, err
	}
	if truncated {
		return oembed{}, fmt.Errorf("%w: oEmbed answer over %d bytes", ErrUnavailable, maxOEmbed)
	}
	return parseOEmbed(body, resp.url)
}

// maxOEmbed bounds an oEmbed answer.
const maxOEmbed = 1 << 20
