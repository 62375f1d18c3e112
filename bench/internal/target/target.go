// Package target is a server under measurement as the bench clients see
// it: its base URL, the Host and access token to send, and an HTTP client.
// Requests whose answer is not 200 fail with the start of the answer's body.
package target

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Target is one server. It is safe for concurrent use.
type Target struct {
	Base   string // "http://host:port"
	Host   string // sent as Host, with Token; "" sends neither (a plain file server)
	Token  string // access token sent as Authorization: Bearer
	Client *http.Client
}

// NewClient returns a client that keeps up to conns idle connections to a
// host, asks for no compression, uses no proxy and gives up on a whole
// exchange after timeout (0: never).
func NewClient(conns int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// Request builds a request for path (with its query) with body, sent with
// Content-Type contentType where that is not "".
func (t *Target) Request(ctx context.Context, method, path, contentType string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.Base+path, rd)
	if err != nil {
		return nil, err
	}
	if t.Host != "" {
		req.Host = t.Host
		req.Header.Set("Authorization", "Bearer "+t.Token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req, nil
}

// Send sends req and returns the answer, which must be 200; the caller
// closes its body.
func (t *Target) Send(req *http.Request) (*http.Response, error) {
	resp, err := t.Client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s %s (Host %s): %s: %s", req.Method, req.URL.RequestURI(), req.Host, resp.Status, bytes.TrimSpace(b))
	}
	return resp, nil
}

// Do is Request and Send.
func (t *Target) Do(ctx context.Context, method, path, contentType string, body []byte) (*http.Response, error) {
	req, err := t.Request(ctx, method, path, contentType, body)
	if err != nil {
		return nil, err
	}
	return t.Send(req)
}

// Verify GETs path and checks that the answer's body is exactly want.
func (t *Target) Verify(ctx context.Context, path string, want []byte) error {
	resp, err := t.Do(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("GET %s%s: %d bytes differ from the %d uploaded", t.Base, path, len(got), len(want))
	}
	return nil
}

// Upload posts b as contentType to /_matrix/media/v3/upload, with
// ?filename=name where name is not "", and returns the media ID of the
// content_uri answered, which must be on t.Host.
func (t *Target) Upload(ctx context.Context, name, contentType string, b []byte) (string, error) {
	path := "/_matrix/media/v3/upload"
	if name != "" {
		path += "?filename=" + url.QueryEscape(name)
	}
	resp, err := t.Do(ctx, http.MethodPost, path, contentType, b)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var ans struct {
		ContentURI string `json:"content_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return "", fmt.Errorf("POST upload to %s: answer: %w", t.Host, err)
	}
	id, ok := strings.CutPrefix(ans.ContentURI, "mxc://"+t.Host+"/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", fmt.Errorf("POST upload to %s: content_uri %q", t.Host, ans.ContentURI)
	}
	io.Copy(io.Discard, resp.Body) // leave the connection reusable
	return id, nil
}
