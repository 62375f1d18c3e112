package preview

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
)

// Fetcher makes previews (Previewer). Safe for concurrent use.
type Fetcher struct {
	o         Options
	providers []provider
	client    *http.Client
}

var _ Previewer = (*Fetcher)(nil)

// What a request accepts.
const (
	acceptPage  = "text/html,application/xhtml+xml;q=0.9,image/*;q=0.8,*/*;q=0.5"
	acceptImage = "image/*"
)

// Preview implements Previewer. A URL an oEmbed provider knows is asked of
// the provider first (a failure there falls back to the page). An HTML
// page gives its tags (a discovered oEmbed answer's win over them, as in
// Synapse); an image is its own Image (og:description: the file name
// its Content-Disposition gives, as in Synapse); any other type gives its
// file name as og:title and is not downloaded. An image too large for
// MaxBytes is previewed as a file.
func (f *Fetcher) Preview(ctx context.Context, rawURL string) (Result, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return Result{}, err
	}
	if err := f.checkURL(u); err != nil {
		return Result{}, err
	}
	ctx, cancel := f.withTimeout(ctx)
	defer cancel()

	if endpoint := f.providerEndpoint(u); endpoint != nil {
		r, err := f.fetchOEmbed(ctx, endpoint)
		if err == nil {
			return oe2result(u, r, nil), nil
		}
		if ctx.Err() != nil {
			return Result{}, f.classify(ctx.Err())
		}
		slog.Debug("preview: oEmbed provider failed, fetching the page", "url", u.Redacted(), "err", err)
	}

	resp, err := f.get(ctx, u, acceptPage)
	if err != nil {
		return Result{}, err
	}
	defer resp.body.Close()
	switch {
	case isImage(resp.mediaType):
		return f.imagePreview(resp)
	case isHTML(resp.mediaType):
		return f.htmlPreview(ctx, u, resp)
	default:
		return filePreview(resp), nil
	}
}

// htmlPreview makes the preview of u's HTML page (resp), asking the
// oEmbed endpoint the page names, if any; its failure is not the page's.
func (f *Fetcher) htmlPreview(ctx context.Context, u *url.URL, resp *response) (Result, error) {
	body, _, err := f.readCapped(resp.body, f.o.MaxBytes)
	if err != nil {
		return Result{}, err
	}
	p := extractHTML(body, resp.contentType, resp.url)
	if p.oembed == "" {
		return Result{OG: p.og, Image: imageRef(p.image)}, nil
	}
	e, err := url.Parse(p.oembed) // resolved by extractHTML: parses
	if err == nil {
		var r oembed
		if r, err = f.fetchOEmbed(ctx, e); err == nil {
			return oe2result(u, r, &p), nil
		}
	}
	slog.Debug("preview: discovered oEmbed failed", "url", u.Redacted(), "err", err)
	return Result{OG: p.og, Image: imageRef(p.image)}, nil
}

// oe2result merges an oEmbed answer for u over the page's own data (p;
// nil when there is no page), as Synapse does: the answer's keys and image
// win, og:url is u, and the answer's author is the title of last resort.
func oe2result(u *url.URL, r oembed, p *page) Result {
	og := map[string]string{}
	image := r.image
	if p != nil {
		for k, v := range p.og {
			og[k] = v
		}
		image = firstOf(image, p.image)
	}
	for k, v := range r.og {
		og[k] = v
	}
	og["og:url"] = u.String()
	if og["og:title"] == "" {
		og["og:title"] = r.author
	}
	return Result{OG: clean(og), Image: imageRef(image)}
}

// imageRef is the ImageRef of an image URL: a data: URL's image comes
// decoded, so it is not fetched.
func imageRef(u string) *ImageRef {
	if ref, ok := dataImage(u); ok {
		return &ref
	}
	if u == "" {
		return nil
	}
	return &ImageRef{URL: u}
}

// imagePreview makes the preview of a URL that is an image.
func (f *Fetcher) imagePreview(resp *response) (Result, error) {
	body, err := f.readImage(resp)
	if errors.Is(err, errTooLarge) {
		return filePreview(resp), nil
	}
	if err != nil {
		return Result{}, err
	}
	og := map[string]string{"og:description": dispositionName(resp.header)}
	return Result{OG: clean(og), Image: &ImageRef{URL: resp.url.String(), Body: body, ContentType: resp.contentType}}, nil
}

// filePreview is the preview of a file that is neither HTML nor a usable
// image: its name as og:title; its body is left unread.
func filePreview(resp *response) Result {
	return Result{OG: clean(map[string]string{"og:title": resp.fileName()})}
}

// Image implements Previewer: the image at rawURL, under the same rules,
// within Options.Timeout. A non-image type, or an image over MaxBytes, is
// ErrUnavailable.
func (f *Fetcher) Image(ctx context.Context, rawURL string) (Image, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return Image{}, err
	}
	ctx, cancel := f.withTimeout(ctx)
	defer cancel()
	resp, err := f.get(ctx, u, acceptImage)
	if err != nil {
		return Image{}, err
	}
	defer resp.body.Close()
	body, err := f.readImage(resp)
	if err != nil {
		return Image{}, err
	}
	return Image{Body: body, ContentType: resp.contentType}, nil
}
