package preview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// response is a fetched response whose headers are read and whose body is
// not: the caller reads what it needs and closes body.
type response struct {
	url         *url.URL // after redirects
	contentType string   // as declared
	mediaType   string   // lower case, no parameters
	length      int64    // Content-Length, -1 when unknown
	header      http.Header
	body        io.ReadCloser
}

// newClient returns the client every request goes through: dials only
// through Options.DialContext, never through a proxy, keeps no idle
// connections (previews go to ever new hosts), and checks every redirect.
func (f *Fetcher) newClient() *http.Client {
	t := &http.Transport{
		Proxy:                  nil,
		DialContext:            f.dial,
		DisableKeepAlives:      true,
		TLSHandshakeTimeout:    f.o.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{Transport: t, CheckRedirect: f.checkRedirect}
}

// dial is Options.DialContext with the trailing dot of a fully qualified
// name removed ("localhost." is localhost), so that every resolver reads
// the name alike and the dialer checks the address it names.
func (f *Fetcher) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil && len(host) > 1 && strings.HasSuffix(host, ".") {
		addr = net.JoinHostPort(strings.TrimSuffix(host, "."), port)
	}
	return f.o.DialContext(ctx, network, addr)
}

// checkRedirect applies the URL rules to every hop and bounds their
// number. A denied hop is ErrForbidden; one that is no http(s) URL, or has
// userinfo, is ErrUnavailable.
func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > f.o.MaxRedirects {
		return fmt.Errorf("%w: more than %d redirects", ErrUnavailable, f.o.MaxRedirects)
	}
	err := f.checkURL(req.URL)
	if errors.Is(err, ErrBadURL) {
		// The site's fault, not the caller's: a bad redirect is a failing site.
		return fmt.Errorf("%w: redirect to %s: %v", ErrUnavailable, req.URL.Redacted(), err)
	}
	return err
}

// get checks u and requests it with accept; a response that is not 2xx is
// ErrUnavailable. The caller closes the body of a returned response.
func (f *Fetcher) get(ctx context.Context, u *url.URL, accept string) (*response, error) {
	if err := f.checkURL(u); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	req.Header.Set("User-Agent", f.o.UserAgent)
	req.Header.Set("Accept", accept)
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, f.classify(err)
	}
	if resp.StatusCode/100 != 2 {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s answered %s", ErrUnavailable, resp.Request.URL.Redacted(), resp.Status)
	}
	ct := resp.Header.Get("Content-Type")
	return &response{url: resp.Request.URL, contentType: ct, mediaType: mediaType(ct),
		length: resp.ContentLength, header: resp.Header, body: resp.Body}, nil
}

// classify turns a failed request into an error wrapping one of the
// package's sentinels.
func (f *Fetcher) classify(err error) error {
	switch {
	case errors.Is(err, ErrBadURL), errors.Is(err, ErrForbidden), errors.Is(err, ErrUnavailable):
		return err
	case f.o.Refused(err):
		return fmt.Errorf("%w: %v", ErrForbidden, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: no answer within %s: %v", ErrUnavailable, f.o.Timeout, err)
	default:
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
}

// readCapped reads at most max bytes of r; truncated says there was more.
func (f *Fetcher) readCapped(r io.Reader, max int64) (body []byte, truncated bool, err error) {
	body, err = io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, false, f.classify(err)
	}
	if int64(len(body)) > max {
		return body[:max], true, nil
	}
	return body, false, nil
}

// errTooLarge marks an image over MaxBytes (it wraps ErrUnavailable).
var errTooLarge = fmt.Errorf("%w: image over the size limit", ErrUnavailable)

// readImage reads the body of an image response: the whole image, at most
// MaxBytes, or an error wrapping ErrUnavailable (errTooLarge when too
// large).
func (f *Fetcher) readImage(resp *response) ([]byte, error) {
	if !isImage(resp.mediaType) {
		return nil, fmt.Errorf("%w: %s is %q, not an image", ErrUnavailable, resp.url.Redacted(), resp.mediaType)
	}
	if resp.length > f.o.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, resp.length, f.o.MaxBytes)
	}
	body, truncated, err := f.readCapped(resp.body, f.o.MaxBytes)
	if err != nil {
		return nil, err
	}
	if truncated {
		return nil, fmt.Errorf("%w: limit %d bytes", errTooLarge, f.o.MaxBytes)
	}
	return body, nil
}

// withTimeout bounds one call by Options.Timeout.
func (f *Fetcher) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, f.o.Timeout)
}

// mediaType is the lower-case type/subtype of a Content-Type header;
// application/octet-stream when there is none.
func mediaType(ct string) string {
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	mt, _, _ := strings.Cut(ct, ";")
	if mt = strings.ToLower(strings.TrimSpace(mt)); mt == "" {
		return "application/octet-stream"
	}
	return mt
}

func isImage(mt string) bool { return strings.HasPrefix(mt, "image/") }

func isHTML(mt string) bool { return mt == "text/html" || mt == "application/xhtml+xml" }

// dispositionName is the name a response gives itself in Content-Disposition, or
// "" when it gives none.
func dispositionName(h http.Header) string {
	_, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
	if err != nil || params["filename"] == "" {
		return ""
	}
	if n := path.Base("/" + params["filename"]); n != "/" {
		return n
	}
	return ""
}

// fileName is the response's file name: from Content-Disposition, else the
// last segment of the URL's path; "" when neither has one.
func (r *response) fileName() string {
	if n := dispositionName(r.header); n != "" {
		return n
	}
	n := path.Base(r.url.Path)
	if n == "/" || n == "." {
		return ""
	}
	return n
}
