package main

// End-to-end tests of the Matrix media API, written from
// /work/shared/docs/matrix-media.md: serve runs in this process with two
// homeservers (a.test and b.test) whose tokens are checked by in-test
// whoami servers.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/media/mediatest"
)

func TestE2EHealthz(t *testing.T) {
	t.Parallel()
	s := startE2E(t, nil)
	for _, host := range []string{hostA, s.addr} {
		r := s.do(t, http.MethodGet, host, "/healthz", "", nil, nil)
		wantStatus(t, r, http.StatusOK)
	}
}

func TestE2EUploadDownload(t *testing.T) {
	t.Parallel()
	s := startE2E(t, nil)
	for _, c := range []struct {
		name     string
		prefix   string // of the upload path
		ctype    string // sent on upload; "" for none
		filename string // ?filename=; "" for none
		wantCT   []string
		wantDisp string
		wantName string // as for wantDisposition
	}{
		{"unknown type verbatim", "v3", "img/png", "x.png", []string{"img/png"}, "attachment", "filename=x.png"},
		{"r0 prefix", "r0", "image/png", "x.png", []string{"image/png"}, "inline", "filename=x.png"},
		{"v1 prefix", "v1", "image/jpeg", "photo.jpg", []string{"image/jpeg"}, "inline", "filename=photo.jpg"},
		{"type case kept, inline check case-insensitive", "v3", "Image/PNG", "y.png", []string{"Image/PNG"}, "inline", "filename=y.png"},
		{"non-ASCII name", "v3", "image/png", "naïve.png", []string{"image/png"}, "inline", "filename*=utf-8''na%C3%AFve.png"},
		{"name with space", "v3", "image/png", "my cat.png", []string{"image/png"}, "inline", "filename*=utf-8''my%20cat.png"},
		{"no name", "v3", "image/png", "", []string{"image/png"}, "inline", ""},
		{"no type", "v3", "", "blob.bin", []string{"application/octet-stream"}, "attachment", "filename=blob.bin"},
		{"text/plain", "v3", "text/plain", "notes.txt", []string{"text/plain", "text/plain; charset=utf-8"}, "inline", "filename=notes.txt"},
		{"text/html", "v3", "text/html", "page.html", []string{"text/html", "text/html; charset=utf-8"}, "attachment", "filename=page.html"},
		{"svg", "v3", "image/svg+xml", "pic.svg", []string{"image/svg+xml"}, "attachment", "filename=pic.svg"},
		{"video/mp4", "v3", "video/mp4", "clip.mp4", []string{"video/mp4"}, "inline", "filename=clip.mp4"},
		{"application/pdf", "v3", "application/pdf", "doc.pdf", []string{"application/pdf"}, "attachment", "filename=doc.pdf"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := content(uint64(len(c.name)), 5000+len(c.name))
			id := s.uploadVia(t, c.prefix, hostA, aliceToken, c.filename, c.ctype, body)
			r := s.download(t, hostA, hostA, id, aliceToken)
			wantBytes(t, r, body)
			ct := r.Header.Get("Content-Type")
			ok := false
			for _, w := range c.wantCT {
				ok = ok || ct == w || strings.ReplaceAll(ct, " ", "") == strings.ReplaceAll(w, " ", "")
			}
			if !ok {
				t.Errorf("Content-Type %q, want one of %q", ct, c.wantCT)
			}
			wantDisposition(t, r, c.wantDisp, c.wantName)
		})
	}

	t.Run("file name from path", func(t *testing.T) {
		body := content(100, 3000)
		id := s.upload(t, hostA, aliceToken, "x.png", "img/png", body)
		for _, c := range []struct{ segment, want string }{
			{"other%20name.txt", "filename*=utf-8''other%20name.txt"},
			{"y.png", "filename=y.png"},
			{"na%C3%AFve.png", "filename*=utf-8''na%C3%AFve.png"},
		} {
			r := s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/download/a.test/"+id+"/"+c.segment, aliceToken, nil, nil)
			wantBytes(t, r, body)
			if ct := r.Header.Get("Content-Type"); ct != "img/png" {
				t.Errorf("%s: Content-Type %q, want img/png", r.what, ct)
			}
			wantDisposition(t, r, "attachment", c.want)
		}
	})

	t.Run("empty body", func(t *testing.T) {
		id := s.upload(t, hostA, aliceToken, "empty.txt", "text/plain", []byte{})
		r := s.download(t, hostA, hostA, id, aliceToken)
		wantBytes(t, r, []byte{})
	})

	t.Run("same bytes twice, two IDs", func(t *testing.T) {
		body := content(101, 20000)
		id1 := s.upload(t, hostA, aliceToken, "one.bin", "", body)
		id2 := s.upload(t, hostA, bobToken, "two.bin", "", body)
		if id1 == id2 {
			t.Errorf("two uploads got the same ID %s", id1)
		}
		for id, name := range map[string]string{id1: "filename=one.bin", id2: "filename=two.bin"} {
			r := s.download(t, hostA, hostA, id, aliceToken)
			wantBytes(t, r, body)
			wantDisposition(t, r, "attachment", name)
		}
	})
}

func TestE2EDownloadHeaders(t *testing.T) {
	t.Parallel()
	s := startE2E(t, nil)
	body := content(200, 4000)
	id := s.upload(t, hostA, aliceToken, "x.png", "image/png", body)

	t.Run("security headers", func(t *testing.T) {
		r := s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/download/a.test/"+id, aliceToken, nil,
			map[string]string{"Origin": "https://app.example"})
		wantBytes(t, r, body)
		for k, want := range map[string]string{
			"Content-Security-Policy":      wantCSP,
			"Cross-Origin-Resource-Policy": "cross-origin",
			"X-Content-Type-Options":       "nosniff",
			"Access-Control-Allow-Origin":  "*",
		} {
			if got := r.Header.Get(k); got != want {
				t.Errorf("%s: %s %q, want %q", r.what, k, got, want)
			}
		}
	})

	t.Run("CORS on other answers", func(t *testing.T) {
		for _, r := range []*e2eResp{
			s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/config", aliceToken, nil, nil),
			s.do(t, http.MethodPost, hostA, "/_matrix/media/v3/upload", aliceToken, []byte("x"), nil),
			s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/download/a.test/"+id, "", nil, nil),
			s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/download/a.test/nosuchmedia", aliceToken, nil, nil),
		} {
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("%s (status %d): Access-Control-Allow-Origin %q, want *", r.what, r.Status, got)
			}
		}
	})

	t.Run("preflight", func(t *testing.T) {
		for _, path := range []string{
			"/_matrix/client/v1/media/download/a.test/" + id,
			"/_matrix/client/v1/media/download/a.test/nosuchmedia",
			"/_matrix/client/v1/media/download/a.test/nosuchmedia/name.png",
			"/_matrix/client/v1/media/thumbnail/a.test/nosuchmedia?width=32&height=32",
			"/_matrix/client/v1/media/config",
			"/_matrix/media/v3/upload",
			"/_matrix/media/r0/upload",
			"/_matrix/media/v3/upload/a.test/nosuchmedia",
			"/_matrix/media/v1/create",
			"/_matrix/media/v3/download/a.test/nosuchmedia",
		} {
			r := s.do(t, http.MethodOptions, hostA, path, "", nil, map[string]string{
				"Origin":                         "https://app.example",
				"Access-Control-Request-Method":  "POST",
				"Access-Control-Request-Headers": "authorization, content-type",
			})
			if r.Status != http.StatusOK && r.Status != http.StatusNoContent {
				t.Errorf("%s: status %d, want 200 or 204; body %s", r.what, r.Status, short(r.Body))
			}
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("%s: Access-Control-Allow-Origin %q, want *", r.what, got)
			}
			methods := strings.Join(r.Header.Values("Access-Control-Allow-Methods"), ",")
			for _, m := range []string{"GET", "POST", "PUT", "DELETE", "OPTIONS"} {
				if !listHas(methods, m) {
					t.Errorf("%s: Access-Control-Allow-Methods %q lacks %s", r.what, methods, m)
				}
			}
			headers := strings.Join(r.Header.Values("Access-Control-Allow-Headers"), ",")
			for _, h := range []string{"X-Requested-With", "Content-Type", "Authorization"} {
				if !listHas(headers, h) {
					t.Errorf("%s: Access-Control-Allow-Headers %q lacks %s", r.what, headers, h)
				}
			}
		}
	})
}

func TestE2EAuth(t *testing.T) {
	t.Parallel()
	s := startE2E(t, func(c *config.Config) {
		c.Homeservers[0].StaticTokens = map[string]string{"static-token": "@static:a.test"}
	})
	body := content(300, 2000)
	id := s.upload(t, hostA, aliceToken, "a.bin", "", body)

	t.Run("missing token", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{
			{"GET", "/_matrix/client/v1/media/download/a.test/" + id},
			{"GET", "/_matrix/client/v1/media/download/a.test/" + id + "/name.bin"},
			{"GET", "/_matrix/client/v1/media/download/a.test/nosuchmedia"},
			{"GET", "/_matrix/client/v1/media/download/a.test/.."},
			{"GET", "/_matrix/client/v1/media/download/a.test/a%2Fb"},
			{"GET", "/_matrix/client/v1/media/download/a.test/bad!id"},
			{"GET", "/_matrix/client/v1/media/download/not%20a%20server/" + id},
			{"GET", "/_matrix/client/v1/media/download/a.test%2F../" + id},
			{"GET", "/_matrix/client/v1/media/thumbnail/a.test/" + id + "?width=32&height=32"},
			{"GET", "/_matrix/client/v1/media/thumbnail/a.test/" + id + "?width=nonsense"},
			{"GET", "/_matrix/client/v1/media/config"},
			{"GET", "/_matrix/media/v3/config"},
			{"POST", "/_matrix/media/v3/upload?filename=x.png"},
			{"POST", "/_matrix/media/r0/upload"},
			{"POST", "/_matrix/media/v1/upload"},
			{"POST", "/_matrix/media/v1/create"},
			{"PUT", "/_matrix/media/v3/upload/a.test/" + id},
			{"PUT", "/_matrix/media/v3/upload/a.test/.."},
		} {
			var b []byte
			if c.method != http.MethodGet {
				b = []byte("hello")
			}
			r := s.do(t, c.method, hostA, c.path, "", b, nil)
			wantError(t, r, http.StatusUnauthorized, "M_MISSING_TOKEN")
		}
	})

	t.Run("unknown token", func(t *testing.T) {
		for _, r := range []*e2eResp{
			s.download(t, hostA, hostA, id, "bad-token"),
			s.do(t, http.MethodPost, hostA, "/_matrix/media/v3/upload", "bad-token", []byte("x"), nil),
			s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/download/a.test/"+id+"?access_token=bad-token", "", nil, nil),
		} {
			wantError(t, r, http.StatusUnauthorized, "M_UNKNOWN_TOKEN")
		}
	})

	t.Run("access_token query", func(t *testing.T) {
		r := s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/download/a.test/"+id+"?access_token="+aliceToken, "", nil, nil)
		wantBytes(t, r, body)
		r = s.do(t, http.MethodPost, hostA, "/_matrix/media/v3/upload?filename=q.bin&access_token="+bobToken, "", body, nil)
		if wantStatus(t, r, http.StatusOK) {
			qid := contentURIID(t, r, hostA)
			wantBytes(t, s.download(t, hostA, hostA, qid, aliceToken), body)
		}
	})

	t.Run("cache", func(t *testing.T) {
		before := s.whoamiA.calls.Load()
		r := s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/config", "cache-token", nil, nil)
		wantStatus(t, r, http.StatusOK)
		first := s.whoamiA.calls.Load() - before
		if first != 1 {
			t.Errorf("first request with a new token: %d whoami calls, want 1", first)
		}
		wantBytes(t, s.download(t, hostA, hostA, id, "cache-token"), body)
		if n := s.whoamiA.calls.Load() - before; n != first {
			t.Errorf("second request with the same token within the TTL: %d whoami calls in all, want %d", n, first)
		}
	})

	t.Run("static token", func(t *testing.T) {
		before := s.whoamiA.calls.Load()
		wantBytes(t, s.download(t, hostA, hostA, id, "static-token"), body)
		sid := s.upload(t, hostA, "static-token", "s.bin", "", body)
		if n := s.whoamiA.calls.Load() - before; n != 0 {
			t.Errorf("static token: %d whoami calls, want none", n)
		}
		wantBytes(t, s.download(t, hostA, hostA, sid, aliceToken), body)
		// The static token belongs to a.test only.
		r := s.download(t, hostB, hostA, id, "static-token")
		wantError(t, r, http.StatusUnauthorized, "M_UNKNOWN_TOKEN")
	})

	t.Run("homeserver failing", func(t *testing.T) {
		s.whoamiA.fail.Store(true)
		defer s.whoamiA.fail.Store(false)
		for _, r := range []*e2eResp{
			s.download(t, hostA, hostA, id, "never-seen-token-1"),
			s.do(t, http.MethodPost, hostA, "/_matrix/media/v3/upload", "never-seen-token-2", []byte("x"), nil),
		} {
			wantError(t, r, http.StatusBadGateway, "")
		}
	})

	t.Run("homeserver down", func(t *testing.T) {
		down := startE2E(t, func(c *config.Config) {
			c.Homeservers[0].ClientAPI = "http://127.0.0.1:1" // nothing listens there
		})
		r := down.download(t, hostA, hostA, "nosuchmedia", aliceToken)
		if r.Status != http.StatusBadGateway && r.Status != http.StatusGatewayTimeout {
			t.Errorf("%s: status %d, want 502 or 504; body %s", r.what, r.Status, short(r.Body))
		}
		matrixErrcode(t, r)
	})
}

func TestE2EErrors(t *testing.T) {
	t.Parallel()
	s := startE2E(t, nil)
	id := s.upload(t, hostA, aliceToken, "x.bin", "", content(400, 1000))

	t.Run("unknown media", func(t *testing.T) {
		for _, path := range []string{
			"/_matrix/client/v1/media/download/a.test/nosuchmedia",
			"/_matrix/client/v1/media/download/a.test/nosuchmedia/name.png",
			"/_matrix/client/v1/media/download/b.test/nosuchmedia",
		} {
			wantError(t, s.do(t, http.MethodGet, hostA, path, aliceToken, nil, nil), http.StatusNotFound, "M_NOT_FOUND")
		}
	})

	t.Run("unknown path", func(t *testing.T) {
		for _, path := range []string{
			"/_matrix/media/v3/nonsense",
			"/_matrix/client/v1/media/nonsense",
			"/_matrix/client/v1/nonsense",
			"/_matrix/media/v4/upload",
			"/_matrix/nonsense",
		} {
			wantError(t, s.do(t, http.MethodGet, hostA, path, aliceToken, nil, nil), http.StatusNotFound, "M_UNRECOGNIZED")
		}
	})

	t.Run("wrong method", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{
			{"DELETE", "/_matrix/media/v3/upload"},
			{"GET", "/_matrix/media/v3/upload"},
			{"PUT", "/_matrix/media/v3/upload"},
			{"GET", "/_matrix/media/v1/create"},
			{"POST", "/_matrix/client/v1/media/config"},
			{"DELETE", "/_matrix/client/v1/media/download/a.test/" + id},
			{"POST", "/_matrix/client/v1/media/download/a.test/" + id},
		} {
			wantError(t, s.do(t, c.method, hostA, c.path, aliceToken, nil, nil), http.StatusMethodNotAllowed, "M_UNRECOGNIZED")
		}
	})

	t.Run("hostile IDs and server names", func(t *testing.T) {
		long := strings.Repeat("a", 300)
		for _, seg := range []string{
			"a.test/..",
			"a.test/.",
			"a.test/%2E%2E",
			"a.test/a%2Fb",
			"a.test/..%2F..%2F..%2Fetc%2Fpasswd",
			"a.test/a.b",
			"a.test/a%00b",
			"a.test/a%20b",
			"a.test/%C3%A9t%C3%A9",
			"a.test/" + long,
			"a.test/" + id + "%2F..",
			"..%2Fa.test/" + id,
			"a.test%2F..%2F..%2Fcas/" + id,
			"not%20a%20server/" + id,
			"a.test:99999/" + id,
			"[zz]/" + id,
			strings.Repeat("x", 300) + ".test/" + id,
		} {
			for _, path := range []string{
				"/_matrix/client/v1/media/download/" + seg,
				"/_matrix/client/v1/media/download/" + seg + "/name.bin",
				"/_matrix/client/v1/media/thumbnail/" + seg + "?width=32&height=32",
			} {
				r := s.do(t, http.MethodGet, hostA, path, aliceToken, nil, nil)
				if r.Status != http.StatusBadRequest && r.Status != http.StatusNotFound {
					t.Errorf("%s: status %d, want 400 or 404; body %s", r.what, r.Status, short(r.Body))
				}
				matrixErrcode(t, r)
			}
			r := s.do(t, http.MethodPut, hostA, "/_matrix/media/v3/upload/"+seg, aliceToken, []byte("x"), nil)
			if r.Status != http.StatusBadRequest && r.Status != http.StatusNotFound {
				t.Errorf("%s: status %d, want 400 or 404; body %s", r.what, r.Status, short(r.Body))
			}
			matrixErrcode(t, r)
		}
	})

	t.Run("hostile file name", func(t *testing.T) {
		body := content(401, 100)
		for _, name := range []string{"../../etc/passwd", `a"b.txt`, "a;b.txt", "a\r\nX-Evil: 1", "a+b c%20.txt"} {
			hid := s.upload(t, hostA, aliceToken, name, "text/plain", body)
			r := s.download(t, hostA, hostA, hid, aliceToken)
			wantBytes(t, r, body)
			if r.Header.Get("X-Evil") != "" {
				t.Errorf("%s: file name %q injected a header", r.what, name)
			}
			cd := r.Header.Get("Content-Disposition")
			_, params, err := mime.ParseMediaType(cd)
			if err != nil || params["filename"] != name {
				t.Errorf("%s: Content-Disposition %q gives file name %q (err %v), want %q", r.what, cd, params["filename"], err, name)
			}
		}
	})

	t.Run("unknown host", func(t *testing.T) {
		for _, r := range []*e2eResp{
			s.do(t, http.MethodGet, "c.test", "/_matrix/client/v1/media/config", aliceToken, nil, nil),
			s.do(t, http.MethodGet, "c.test", "/_matrix/client/v1/media/download/a.test/"+id, aliceToken, nil, nil),
			s.do(t, http.MethodPost, "c.test", "/_matrix/media/v3/upload", aliceToken, []byte("x"), nil),
			s.do(t, http.MethodGet, "c.test:8448", "/_matrix/media/v3/download/a.test/"+id, "", nil, nil),
		} {
			wantClientError(t, r)
			if bytes.Contains(r.Body, []byte("content_uri")) {
				t.Errorf("%s: an unknown host stored media: %s", r.what, short(r.Body))
			}
		}
	})
}

func TestE2EUploadLimit(t *testing.T) {
	t.Parallel()
	const limit = 1000
	s := startE2E(t, func(c *config.Config) { c.Server.MaxUploadBytes = limit })

	chunked := func(t *testing.T, body []byte) *e2eResp {
		t.Helper()
		req, err := s.request(context.Background(), http.MethodPost, hostA, "/_matrix/media/v3/upload?filename=c.bin", aliceToken,
			io.MultiReader(bytes.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1
		return s.send(t, req)
	}

	tooBig := content(500, limit+1)
	wantError(t, s.do(t, http.MethodPost, hostA, "/_matrix/media/v3/upload", aliceToken, tooBig, nil),
		http.StatusRequestEntityTooLarge, "M_TOO_LARGE")
	wantError(t, chunked(t, content(501, 5000)), http.StatusRequestEntityTooLarge, "M_TOO_LARGE")
	wantError(t, chunked(t, content(502, limit+1)), http.StatusRequestEntityTooLarge, "M_TOO_LARGE")

	exact := content(503, limit)
	id := s.upload(t, hostA, aliceToken, "exact.bin", "", exact)
	wantBytes(t, s.download(t, hostA, hostA, id, aliceToken), exact)

	exact2 := content(504, limit)
	r := chunked(t, exact2)
	if wantStatus(t, r, http.StatusOK) {
		wantBytes(t, s.download(t, hostA, hostA, contentURIID(t, r, hostA), aliceToken), exact2)
	}

	r = s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/config", aliceToken, nil, nil)
	wantConfig(t, r, limit)

	s.stop(t)
	if rep := mediatest.FsckDir(t, s.dataDir); rep.Media != 2 {
		t.Errorf("store holds %d media, want 2 (the uploads that got 413 must leave no record)", rep.Media)
	}
}

// wantConfig checks {"m.upload.size": size}.
func wantConfig(t *testing.T, r *e2eResp, size int64) {
	t.Helper()
	if !wantStatus(t, r, http.StatusOK) {
		return
	}
	var v map[string]json.Number
	d := json.NewDecoder(bytes.NewReader(r.Body))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Errorf("%s: body %s: %v", r.what, short(r.Body), err)
		return
	}
	if got := v["m.upload.size"]; got.String() != fmt.Sprint(size) {
		t.Errorf("%s: m.upload.size %q, want %d", r.what, got, size)
	}
}

func TestE2EConfig(t *testing.T) {
	t.Parallel()
	s := startE2E(t, nil)
	for _, host := range []string{hostA, hostA + ":8448"} {
		for _, path := range []string{"/_matrix/client/v1/media/config", "/_matrix/media/v3/config"} {
			wantConfig(t, s.do(t, http.MethodGet, host, path, aliceToken, nil, nil), s.cfg.Server.MaxUploadBytes)
		}
	}
	wantConfig(t, s.do(t, http.MethodGet, hostB, "/_matrix/client/v1/media/config", carolToken, nil, nil), s.cfg.Server.MaxUploadBytes)
}

func TestE2ERanges(t *testing.T) {
	t.Parallel()
	s := startE2E(t, nil)
	const size = 100 << 10
	body := content(600, size)
	id := s.upload(t, hostA, aliceToken, "video.mp4", "video/mp4", body)
	path := "/_matrix/client/v1/media/download/a.test/" + id

	full := s.do(t, http.MethodGet, hostA, path, aliceToken, nil, nil)
	wantBytes(t, full, body)
	if cl := full.Header.Get("Content-Length"); cl != "" && cl != fmt.Sprint(size) {
		t.Errorf("Content-Length %s, want %d", cl, size)
	}

	for _, c := range []struct {
		rng, contentRange string
		want              []byte
	}{
		{"bytes=100-199", "bytes 100-199/102400", body[100:200]},
		{"bytes=-10", "bytes 102390-102399/102400", body[size-10:]},
		{"bytes=102000-", "bytes 102000-102399/102400", body[102000:]},
		{"bytes=0-0", "bytes 0-0/102400", body[:1]},
	} {
		r := s.do(t, http.MethodGet, hostA, path, aliceToken, nil, map[string]string{"Range": c.rng})
		if !wantStatus(t, r, http.StatusPartialContent) {
			continue
		}
		if got := r.Header.Get("Content-Range"); got != c.contentRange {
			t.Errorf("Range %s: Content-Range %q, want %q", c.rng, got, c.contentRange)
		}
		if !bytes.Equal(r.Body, c.want) {
			t.Errorf("Range %s: got %d bytes, want %d (equal: false)", c.rng, len(r.Body), len(c.want))
		}
	}

	r := s.do(t, http.MethodGet, hostA, path, aliceToken, nil, map[string]string{"Range": "bytes=200000-"})
	wantStatus(t, r, http.StatusRequestedRangeNotSatisfiable)

	etag := full.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on a download")
	}
	r = s.do(t, http.MethodGet, hostA, path, aliceToken, nil, map[string]string{"If-None-Match": etag})
	wantStatus(t, r, http.StatusNotModified)
	if len(r.Body) != 0 {
		t.Errorf("304 with a %d-byte body", len(r.Body))
	}
}

// createMedia does POST /_matrix/media/v1/create and returns the new ID.
func createMedia(t *testing.T, s *e2eServer, token string) string {
	t.Helper()
	r := s.do(t, http.MethodPost, hostA, "/_matrix/media/v1/create", token, nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("%s: status %d, want 200; body %s", r.what, r.Status, short(r.Body))
	}
	return contentURIID(t, r, hostA)
}

func TestE2EAsyncUpload(t *testing.T) {
	t.Parallel()
	s := startE2E(t, nil)
	put := func(t *testing.T, token, id string, body []byte) *e2eResp {
		t.Helper()
		return s.do(t, http.MethodPut, hostA, "/_matrix/media/v3/upload/a.test/"+id+"?filename=f.txt", token, body,
			map[string]string{"Content-Type": "text/plain"})
	}

	now := time.Now()
	r := s.do(t, http.MethodPost, hostA, "/_matrix/media/v1/create", aliceToken, nil, nil)
	if !wantStatus(t, r, http.StatusOK) {
		t.FailNow()
	}
	var created struct {
		ContentURI      string `json:"content_uri"`
		UnusedExpiresAt *int64 `json:"unused_expires_at"`
	}
	if err := json.Unmarshal(r.Body, &created); err != nil {
		t.Fatalf("create: body %s: %v", short(r.Body), err)
	}
	id := contentURIID(t, r, hostA)
	if created.UnusedExpiresAt == nil {
		t.Errorf("create: no unused_expires_at in %s", short(r.Body))
	} else {
		lo, hi := now.Add(23*time.Hour).UnixMilli(), now.Add(25*time.Hour).UnixMilli()
		if got := *created.UnusedExpiresAt; got < lo || got > hi {
			t.Errorf("unused_expires_at %d (%v), want about now+24h in ms, within [%d, %d]",
				got, time.UnixMilli(got), lo, hi)
		}
	}

	body := content(700, 30000)

	t.Run("not yet uploaded", func(t *testing.T) {
		r := s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/download/a.test/"+id+"?timeout_ms=1", aliceToken, nil, nil)
		wantError(t, r, http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED")
	})

	t.Run("wrong user", func(t *testing.T) {
		wantError(t, put(t, bobToken, id, body), http.StatusForbidden, "M_FORBIDDEN")
	})

	t.Run("unknown ID", func(t *testing.T) {
		wantError(t, put(t, aliceToken, "neverCreated123", body), http.StatusNotFound, "M_NOT_FOUND")
	})

	t.Run("upload wakes a waiting download", func(t *testing.T) {
		// Prove the content is not there yet, then wait for it.
		r := s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/download/a.test/"+id+"?timeout_ms=1", aliceToken, nil, nil)
		wantError(t, r, http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED")

		ctx, cancel := context.WithTimeout(context.Background(), e2eBound)
		defer cancel()
		req, err := s.request(ctx, http.MethodGet, hostA, "/_matrix/client/v1/media/download/a.test/"+id+"?timeout_ms=60000", aliceToken, nil)
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			r   *e2eResp
			err error
		}
		waiting := make(chan result, 1)
		go func() {
			r, err := s.roundTrip(req)
			waiting <- result{r, err}
		}()

		r = put(t, aliceToken, id, body)
		if wantStatus(t, r, http.StatusOK) {
			var v map[string]any
			if err := json.Unmarshal(r.Body, &v); err != nil {
				t.Errorf("%s: body %s is not a JSON object: %v", r.what, short(r.Body), err)
			}
		}

		select {
		case res := <-waiting:
			if res.err != nil {
				t.Fatal(res.err)
			}
			wantBytes(t, res.r, body)
		case <-ctx.Done():
			t.Fatalf("the waiting download was not answered within %v of the upload", e2eBound)
		}
	})

	t.Run("content stays", func(t *testing.T) {
		r := s.download(t, hostA, hostA, id, bobToken)
		wantBytes(t, r, body)
		wantDisposition(t, r, "inline", "filename=f.txt")
		if ct := r.Header.Get("Content-Type"); ct != "text/plain" && strings.ReplaceAll(ct, " ", "") != "text/plain;charset=utf-8" {
			t.Errorf("Content-Type %q, want text/plain", ct)
		}
	})

	t.Run("no overwrite", func(t *testing.T) {
		wantError(t, put(t, aliceToken, id, content(701, 10)), http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA")
		// The creator check comes before the content check.
		wantError(t, put(t, bobToken, id, content(701, 10)), http.StatusForbidden, "M_FORBIDDEN")
		wantBytes(t, s.download(t, hostA, hostA, id, aliceToken), body)
	})

	t.Run("ID of a synchronous upload", func(t *testing.T) {
		sid := s.upload(t, hostA, aliceToken, "sync.bin", "", content(702, 10))
		r := put(t, aliceToken, sid, content(703, 10))
		if r.Status != http.StatusConflict && r.Status != http.StatusNotFound && r.Status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 409 (or 404/403)", r.what, r.Status)
		}
		matrixErrcode(t, r)
	})
}

func TestE2EPendingCap(t *testing.T) {
	t.Parallel()
	s := startE2E(t, func(c *config.Config) { c.Uploads.MaxPendingPerUser = 2 })
	first := createMedia(t, s, aliceToken)
	createMedia(t, s, aliceToken)

	r := s.do(t, http.MethodPost, hostA, "/_matrix/media/v1/create", aliceToken, nil, nil)
	wantError(t, r, http.StatusTooManyRequests, "M_LIMIT_EXCEEDED")
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("%s: 429 without Retry-After", r.what)
	}

	// The cap is per user.
	createMedia(t, s, bobToken)

	// Filling a created ID frees its place.
	r = s.do(t, http.MethodPut, hostA, "/_matrix/media/v3/upload/a.test/"+first, aliceToken, []byte("filled"), nil)
	wantStatus(t, r, http.StatusOK)
	createMedia(t, s, aliceToken)
}

func TestE2EMultiDomain(t *testing.T) {
	t.Parallel()
	s := startE2E(t, nil)
	bodyA, bodyB := content(800, 7000), content(801, 8000)

	idA := s.upload(t, hostA, aliceToken, "a.bin", "", bodyA)
	// Co-hosted domain: served directly, with b.test's own token.
	wantBytes(t, s.download(t, hostB, hostA, idA, carolToken), bodyA)

	idB := s.upload(t, hostB, carolToken, "b.bin", "", bodyB) // wants mxc://b.test/...
	wantBytes(t, s.download(t, hostB, hostB, idB, carolToken), bodyB)
	wantBytes(t, s.download(t, hostA, hostB, idB, aliceToken), bodyB)

	// A media ID names one server's media only.
	wantError(t, s.download(t, hostA, hostB, idA, aliceToken), http.StatusNotFound, "M_NOT_FOUND")

	// Tokens belong to their homeserver.
	wantError(t, s.download(t, hostB, hostA, idA, aliceToken), http.StatusUnauthorized, "M_UNKNOWN_TOKEN")
	wantError(t, s.download(t, hostA, hostA, idA, carolToken), http.StatusUnauthorized, "M_UNKNOWN_TOKEN")

	// The port in Host is not part of the server name.
	idP := s.upload(t, hostA+":8448", aliceToken, "p.bin", "", bodyA) // wants mxc://a.test/...
	wantBytes(t, s.download(t, hostA+":8448", hostA, idP, aliceToken), bodyA)
	wantBytes(t, s.download(t, hostA, hostA, idP, aliceToken), bodyA)
}

func TestE2EFreeze(t *testing.T) {
	t.Parallel()
	body := content(900, 6000)

	t.Run("frozen", func(t *testing.T) {
		s := startE2E(t, nil) // FreezeUnauthenticated is on by default
		id := s.upload(t, hostA, aliceToken, "x.bin", "", body)
		for _, prefix := range []string{"v3", "r0", "v1"} {
			for _, path := range []string{
				"/_matrix/media/" + prefix + "/download/a.test/" + id,
				"/_matrix/media/" + prefix + "/download/a.test/" + id + "/x.bin",
			} {
				wantError(t, s.do(t, http.MethodGet, hostA, path, "", nil, nil), http.StatusNotFound, "M_NOT_FOUND")
			}
			r := s.do(t, http.MethodGet, hostA, "/_matrix/media/"+prefix+"/thumbnail/a.test/"+id+"?width=32&height=32", "", nil, nil)
			wantClientError(t, r)
		}
		wantBytes(t, s.download(t, hostA, hostA, id, aliceToken), body)

		// Thumbnails of something that is no image: a 4xx, never a 5xx.
		r := s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/thumbnail/a.test/"+id+"?width=32&height=32", aliceToken, nil, nil)
		wantClientError(t, r)
		r = s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/thumbnail/a.test/"+id+"?width=32&height=32", "", nil, nil)
		wantError(t, r, http.StatusUnauthorized, "M_MISSING_TOKEN")
		r = s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/thumbnail/a.test/nosuchmedia?width=32&height=32", aliceToken, nil, nil)
		wantClientError(t, r)
	})

	t.Run("not frozen", func(t *testing.T) {
		s := startE2E(t, func(c *config.Config) { c.Server.FreezeUnauthenticated = false })
		id := s.upload(t, hostA, aliceToken, "x.png", "image/png", body)
		for _, prefix := range []string{"v3", "r0", "v1"} {
			r := s.do(t, http.MethodGet, hostA, "/_matrix/media/"+prefix+"/download/a.test/"+id, "", nil, nil)
			wantBytes(t, r, body)
			if got := r.Header.Get("Content-Security-Policy"); got != wantCSP {
				t.Errorf("%s: Content-Security-Policy %q, want %q", r.what, got, wantCSP)
			}
			wantDisposition(t, r, "inline", "filename=x.png")
		}
		r := s.do(t, http.MethodGet, hostA, "/_matrix/media/v3/download/a.test/"+id+"/other%20name.png", "", nil, nil)
		wantBytes(t, r, body)
		wantDisposition(t, r, "inline", "filename*=utf-8''other%20name.png")
		wantError(t, s.do(t, http.MethodGet, hostA, "/_matrix/media/v3/download/a.test/nosuchmedia", "", nil, nil),
			http.StatusNotFound, "M_NOT_FOUND")
	})
}

func TestE2ERestart(t *testing.T) {
	t.Parallel()
	first := startE2E(t, nil)
	bodies := map[string][]byte{}
	for i, n := range []int{0, 1, 5000, 300 << 10} {
		b := content(uint64(1000+i), n)
		bodies[first.upload(t, hostA, aliceToken, fmt.Sprintf("f%d.png", i), "image/png", b)] = b
	}
	first.stop(t)

	second := startE2E(t, func(c *config.Config) { c.Server.DataDir = first.dataDir })
	for id, b := range bodies {
		r := second.download(t, hostA, hostA, id, aliceToken)
		wantBytes(t, r, b)
		if ct := r.Header.Get("Content-Type"); ct != "image/png" {
			t.Errorf("%s: Content-Type %q after restart, want image/png", r.what, ct)
		}
		if !strings.Contains(r.Header.Get("Content-Disposition"), "filename=f") {
			t.Errorf("%s: Content-Disposition %q lost the file name", r.what, r.Header.Get("Content-Disposition"))
		}
	}
	// Media stored before the restart stays frozen on the legacy path.
	for id := range bodies {
		wantError(t, second.do(t, http.MethodGet, hostA, "/_matrix/media/v3/download/a.test/"+id, "", nil, nil),
			http.StatusNotFound, "M_NOT_FOUND")
		break
	}
}

func TestE2EAbortedUpload(t *testing.T) {
	t.Parallel()
	s := startE2E(t, nil)

	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	head := "POST /_matrix/media/v3/upload?filename=aborted.bin HTTP/1.1\r\n" +
		"Host: a.test\r\n" +
		"Authorization: Bearer " + aliceToken + "\r\n" +
		"Content-Type: application/octet-stream\r\n" +
		"Content-Length: 100000\r\n" +
		"\r\n"
	if _, err := conn.Write(append([]byte(head), content(1100, 1000)...)); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	// The server goes on serving.
	body := content(1101, 50000)
	id := s.upload(t, hostA, aliceToken, "ok.bin", "", body)
	wantBytes(t, s.download(t, hostA, hostA, id, aliceToken), body)

	s.stop(t)
	if rep := mediatest.FsckDir(t, s.dataDir); rep.Media != 1 {
		t.Errorf("store holds %d media, want 1 (the aborted upload must leave no record)", rep.Media)
	}
}
