package matrix

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ErrFederationUnsupported means the remote server does not know the
// authenticated federation media endpoints (404/405 with M_UNRECOGNIZED, or
// a 404/400 that is not JSON): the caller may fall back to DownloadLegacy.
var ErrFederationUnsupported = errors.New("matrix: remote server does not support federation media endpoints")

// DefaultFederationTimeout bounds a whole federation exchange, body
// included, when FedClient.Timeout is 0.
const DefaultFederationTimeout = 2 * time.Minute

// maxErrorBody caps what is read of an error response.
const maxErrorBody = 64 << 10

// RemoteError is a non-success answer of a remote server, with its Matrix
// error code when the body had one.
type RemoteError struct {
	StatusCode int
	ErrCode    string // "" when the body is not a Matrix error
	Message    string
}

func (e *RemoteError) Error() string {
	if e.ErrCode != "" {
		return fmt.Sprintf("matrix: remote answered %d %s: %s", e.StatusCode, e.ErrCode, e.Message)
	}
	return fmt.Sprintf("matrix: remote answered %d", e.StatusCode)
}

// FedClient sends federation requests as Origin, signed with Key, to
// destinations found by Resolver. It is safe for concurrent use; set the
// fields before the first call.
//
// Outbound connections go through DialContext (give it the guarded dialer
// of package netguard), except requests to the exact base URL of one of
// Resolver.Routes, which the operator named and which use a plain dialer.
// Redirects are followed (at most MaxRedirects, never
// from https to http) and, like Location targets, dialled with
// DialContext whoever sent them. The connection state is bounded: one
// set of transports for every remote server, with bounded idle
// connections.
type FedClient struct {
	// Resolver finds destinations; nil means a Resolver of the client's
	// own (real discovery, no routes) fetching .well-known through
	// DialContext.
	Resolver *Resolver
	// Origin is our server name; Key our signing key.
	Origin string
	Key    SigningKey
	// DialContext opens every connection except those to routes; nil
	// means a plain net.Dialer (no address is refused).
	DialContext DialFunc
	// TLSConfig is the base TLS configuration (RootCAs, for tests); nil
	// means the system's. The server name is set per destination.
	TLSConfig *tls.Config
	// Timeout bounds a whole exchange, body included; 0 means
	// DefaultFederationTimeout.
	Timeout time.Duration

	initOnce  sync.Once
	resolver  *Resolver
	transport *fedTransport
}

func (c *FedClient) init() {
	c.initOnce.Do(func() {
		c.transport = newFedTransport(c.DialContext, c.TLSConfig)
		c.resolver = c.Resolver
		if c.resolver == nil {
			c.resolver = &Resolver{HTTPClient: &http.Client{Transport: c.transport}}
		}
	})
}

func (c *FedClient) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultFederationTimeout
}

// httpClient is the client of every request: the transports, the redirect
// policy and the timeout.
func (c *FedClient) httpClient() *http.Client {
	return &http.Client{Transport: c.transport, CheckRedirect: checkRedirect, Timeout: c.timeout()}
}

// CloseIdleConnections closes the client's idle connections.
func (c *FedClient) CloseIdleConnections() {
	c.init()
	c.transport.CloseIdleConnections()
}

// newRequest resolves destination and builds a GET for pathAndQuery. When
// destination is one of the operator's routes, the request's context holds
// routeKey.
func (c *FedClient) newRequest(ctx context.Context, destination, pathAndQuery string) (*http.Request, error) {
	c.init()
	if !strings.HasPrefix(pathAndQuery, "/") {
		return nil, fmt.Errorf("%w: path %q does not start with /", ErrInvalid, pathAndQuery)
	}
	d, err := c.resolver.Resolve(ctx, destination)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", destination, err)
	}
	u, err := url.Parse(d.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("destination %q: %w", d.BaseURL, err)
	}
	switch _, route := c.resolver.route(destination); {
	case route:
		ctx = context.WithValue(ctx, routeKey{}, u.Scheme+"://"+u.Host)
	case u.Scheme == "https" && d.TLSServerName != "" && d.TLSServerName != u.Hostname():
		ctx = context.WithValue(ctx, tlsNameKey{}, tlsPin{host: u.Host, name: d.TLSServerName})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.BaseURL+pathAndQuery, nil)
	if err != nil {
		return nil, fmt.Errorf("request to %s: %w", destination, err)
	}
	req.Host = d.Host
	return req, nil
}

// Get sends a GET for pathAndQuery (from "/_matrix/", query included) to
// destination, signed with X-Matrix, and returns the response whatever its
// status; the caller closes its body. The signed uri is exactly the request
// target sent on the wire.
func (c *FedClient) Get(ctx context.Context, destination, pathAndQuery string) (*http.Response, error) {
	req, err := c.newRequest(ctx, destination, pathAndQuery)
	if err != nil {
		return nil, err
	}
	auth, err := SignRequest(http.MethodGet, req.URL.RequestURI(), c.Origin, destination, nil, c.Key)
	if err != nil {
		return nil, fmt.Errorf("sign request to %s: %w", destination, err)
	}
	req.Header.Set("Authorization", auth)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s from %s: %w", req.URL.Path, destination, err)
	}
	return resp, nil
}

// getUnsigned is Get without the X-Matrix header.
func (c *FedClient) getUnsigned(ctx context.Context, destination, pathAndQuery string) (*http.Response, error) {
	req, err := c.newRequest(ctx, destination, pathAndQuery)
	if err != nil {
		return nil, err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s from %s: %w", req.URL.Path, destination, err)
	}
	return resp, nil
}

// DownloadMedia fetches mediaID from destination over the authenticated
// federation endpoint: /_matrix/federation/v1/media/download/{mediaID}, or
// /thumbnail/{mediaID}?{thumbnail} when thumbnail is not nil. When the media
// part is a Location redirect, the URL is fetched with a plain GET (no
// signature, through DialContext, never a route's trust) and its body and
// Content-Type/Content-Disposition returned. A Location must be https,
// except when destination is a route: a private deployment may serve its
// media over http.
//
// The caller reads part.Body and then closes the returned Closer; size
// limits are the caller's. A server that does not know the endpoint gives
// an error wrapping ErrFederationUnsupported; other failures a *RemoteError
// (404 M_NOT_FOUND for unknown media) or a transport error.
func (c *FedClient) DownloadMedia(ctx context.Context, destination, mediaID string, thumbnail url.Values) (MediaPart, io.Closer, error) {
	if err := ValidateMediaID(mediaID); err != nil {
		return MediaPart{}, nil, err
	}
	p := "/_matrix/federation/v1/media/download/" + mediaID
	if thumbnail != nil {
		p = "/_matrix/federation/v1/media/thumbnail/" + mediaID
		if q := thumbnail.Encode(); q != "" {
			p += "?" + q
		}
	}
	resp, err := c.Get(ctx, destination, p)
	if err != nil {
		return MediaPart{}, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return MediaPart{}, nil, federationError(resp)
	}
	_, part, err := ReadMultipart(resp.Header.Get("Content-Type"), resp.Body)
	if err != nil {
		resp.Body.Close()
		return MediaPart{}, nil, fmt.Errorf("media %s from %s: %w", mediaID, destination, err)
	}
	if part.Location == "" {
		return part, resp.Body, nil
	}
	resp.Body.Close()
	// The route's trust goes along: a Location on the route's own base URL
	// is the operator's host, as a redirect there is.
	v := resp.Request.Context().Value(routeKey{})
	if v != nil {
		ctx = context.WithValue(ctx, routeKey{}, v)
	}
	return c.followLocation(ctx, part.Location, v != nil)
}

// followLocation fetches the URL of a Location media part; http is
// allowed only when the media came from a route.
func (c *FedClient) followLocation(ctx context.Context, location string, route bool) (MediaPart, io.Closer, error) {
	u, err := url.Parse(location)
	if err != nil || u.Host == "" {
		return MediaPart{}, nil, fmt.Errorf("%w: media location %q is not an absolute URL", ErrRedirectRefused, location)
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !route) {
		return MediaPart{}, nil, fmt.Errorf("%w: media location %q: want https", ErrRedirectRefused, u.Redacted())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return MediaPart{}, nil, fmt.Errorf("media location %q: %w", location, err)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return MediaPart{}, nil, fmt.Errorf("media location: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return MediaPart{}, nil, fmt.Errorf("media location: %w", remoteError(resp))
	}
	return MediaPart{
		ContentType:        resp.Header.Get("Content-Type"),
		ContentDisposition: resp.Header.Get("Content-Disposition"),
		Body:               resp.Body,
	}, resp.Body, nil
}

// DownloadLegacy fetches serverName's mediaID from destination over the
// unauthenticated /_matrix/media/v3/download/{serverName}/{mediaID} with
// allow_remote=false&allow_redirect=true, unsigned. It returns the
// response whatever its status; the caller closes its body.
func (c *FedClient) DownloadLegacy(ctx context.Context, destination, serverName, mediaID string) (*http.Response, error) {
	if err := ValidateServerName(serverName); err != nil {
		return nil, err
	}
	if err := ValidateMediaID(mediaID); err != nil {
		return nil, err
	}
	p := "/_matrix/media/v3/download/" + url.PathEscape(serverName) + "/" + mediaID +
		"?allow_remote=false&allow_redirect=true"
	return c.getUnsigned(ctx, destination, p)
}

// federationError classifies a non-200 answer of a federation media
// endpoint.
func federationError(resp *http.Response) error {
	e := remoteError(resp)
	switch {
	case (e.StatusCode == http.StatusNotFound || e.StatusCode == http.StatusMethodNotAllowed) && e.ErrCode == "M_UNRECOGNIZED":
		return fmt.Errorf("%w: %w", ErrFederationUnsupported, e)
	case (e.StatusCode == http.StatusNotFound || e.StatusCode == http.StatusBadRequest) && e.ErrCode == "" && !isJSONResponse(resp):
		return fmt.Errorf("%w: %w", ErrFederationUnsupported, e)
	}
	return e
}

// remoteError reads (a bounded part of) an error body.
func remoteError(resp *http.Response) *RemoteError {
	e := &RemoteError{StatusCode: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var m struct {
		ErrCode string `json:"errcode"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &m) == nil {
		e.ErrCode, e.Message = m.ErrCode, m.Error
	}
	return e
}

// isJSONResponse reports whether resp says its body is JSON.
func isJSONResponse(resp *http.Response) bool {
	t, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return err == nil && (t == "application/json" || strings.HasSuffix(t, "+json"))
}
