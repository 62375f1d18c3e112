package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// noisePNG returns a PNG of random pixels: it does not compress, so it is
// several chunks long.
func noisePNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewChaCha8([32]byte{7}))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.NRGBA{uint8(r.Uint32()), uint8(r.Uint32()), uint8(r.Uint32()), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDamagedChunkOnRead: one chunk of a multi-chunk image upload is
// damaged under DATA/cas (a flipped byte, truncated, removed; the first or
// the last chunk) while the server runs. No client gets the damaged bytes
// in a complete answer: where nothing was sent yet the answer is 500
// M_UNKNOWN, otherwise the connection is cut short of Content-Length. A
// range avoiding the damage still succeeds; a federation download and a
// thumbnail fail likewise, and no thumbnail is stored. The damage is
// logged once, recorded and listed by `mxcas fsck`; `mxcas fsck
// -repair-from BACKUP` (asking the running server) puts the chunk back, and
// the download is whole and fsck clean again.
func TestDamagedChunkOnRead(t *testing.T) {
	keyFile := func(name string) (string, matrix.SigningKey) {
		k, err := matrix.GenerateSigningKey("k" + name)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), name+".key")
		if err := os.WriteFile(p, k.MarshalFile(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p, k
	}
	keyA, _ := keyFile("a")
	keyB, kb := keyFile("b")
	var routes map[string]string // filled once the server listens
	s := startE2E(t, func(c *config.Config) {
		c.Homeservers[0].SigningKey = keyA
		c.Homeservers[1].SigningKey = keyB
		c.Thumbnails.Pregenerate = false
		routes = map[string]string{}
		c.Federation.Routes = routes
	})
	// b.test asks a.test over federation: both live in this server.
	routes[hostA], routes[hostB] = s.base, s.base
	cfgFile := writeConfig(t, s.dataDir)

	data := noisePNG(t, 400, 300)
	id := s.upload(t, hostA, aliceToken, "noise.png", "image/png", data)
	var chunks []cas.Hash
	var offsets []int
	off := 0
	if err := chunker.Split(data, chunker.DefaultParams, func(c []byte) error {
		chunks, offsets = append(chunks, cas.Sum(c)), append(offsets, off)
		off += len(c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(chunks) < 3 {
		t.Fatalf("%d bytes are %d chunks, want several", len(data), len(chunks))
	}
	backup := filepath.Join(t.TempDir(), "backup")
	if code, out, errs := runMain(t, "backup", "-config", cfgFile, backup); code != 0 {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errs)
	}

	dlPath := "/_matrix/client/v1/media/download/" + hostA + "/" + id
	get := func(headers map[string]string) (*e2eResp, error) {
		req, err := s.request(context.Background(), http.MethodGet, hostA, dlPath, aliceToken, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		return s.roundTrip(req)
	}
	fedPath := "/_matrix/federation/v1/media/download/" + id
	federation := func() (status int, body []byte, err error) {
		auth, err := matrix.SignRequest("GET", fedPath, hostB, hostA, nil, kb)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := s.request(context.Background(), http.MethodGet, hostA, fedPath, "", nil)
		req.Header.Set("Authorization", auth)
		resp, err := s.client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, b, nil
		}
		_, part, err := matrix.ReadMultipart(resp.Header.Get("Content-Type"), resp.Body)
		if err != nil {
			return 200, nil, err
		}
		b, err := io.ReadAll(part.Body)
		return 200, b, err
	}
	thumbPath := "/_matrix/client/v1/media/thumbnail/" + hostA + "/" + id + "?width=77&height=55&method=scale"

	// Before any damage, everything answers whole.
	if r, err := get(nil); err != nil || r.Status != 200 || !bytes.Equal(r.Body, data) {
		t.Fatalf("download before damage: %v", err)
	}
	if code, b, err := federation(); err != nil || code != 200 || !bytes.Equal(b, data) {
		t.Fatalf("federation download before damage: %d %v (%d bytes)", code, err, len(b))
	}

	last := len(chunks) - 1
	for _, c := range []struct {
		name   string
		chunk  int
		damage func(path string) error
	}{
		{"flipped first", 0, flipByte},
		{"flipped last", last, flipByte},
		{"truncated first", 0, truncateHalf},
		{"truncated last", last, truncateHalf},
		{"missing first", 0, os.Remove},
		{"missing last", last, os.Remove},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := chunks[c.chunk]
			logStart := len(s.log.String())
			if err := c.damage(chunkFile(s.dataDir, h)); err != nil {
				t.Fatal(err)
			}
			lastOff := offsets[last]
			whole := fmt.Sprintf("bytes=0-%d", len(data)-1)
			covering, avoiding := "bytes=0-99", fmt.Sprintf("bytes=%d-%d", lastOff, len(data)-1)
			avoidWant := data[lastOff:]
			if c.chunk == last {
				covering, avoiding, avoidWant = avoiding, "bytes=0-99", data[:100]
			}
			// Whole GET: 500 when the first chunk is damaged; cut short
			// after the headers when the last one is (the first time; once
			// recorded, 500 at once).
			for i := range 2 {
				r, err := get(nil)
				switch {
				case c.chunk == 0 || i == 1:
					if err != nil {
						t.Fatalf("whole GET %d: %v, want 500", i, err)
					}
					wantError(t, r, http.StatusInternalServerError, "M_UNKNOWN")
					if !strings.Contains(string(r.Body), "stored content is damaged") {
						t.Errorf("whole GET %d: body %s", i, short(r.Body))
					}
				default:
					if err == nil {
						t.Fatalf("whole GET %d: status %d with %d of %d bytes, want a cut connection", i, r.Status, len(r.Body), len(data))
					}
				}
			}
			r, err := get(map[string]string{"Range": covering})
			if err != nil {
				t.Fatalf("range %s over the damage: %v, want 500", covering, err)
			}
			wantError(t, r, http.StatusInternalServerError, "M_UNKNOWN")
			if r, err := get(map[string]string{"Range": whole}); err == nil && r.Status < 300 {
				t.Errorf("range %s over the damage: %d with %d bytes, want an error or a cut connection", whole, r.Status, len(r.Body))
			}
			r, err = get(map[string]string{"Range": avoiding})
			if err != nil || r.Status != http.StatusPartialContent || !bytes.Equal(r.Body, avoidWant) {
				t.Errorf("range %s avoiding the damage: %v, want 206 and the right bytes", avoiding, err)
			}
			if code, b, err := federation(); err == nil && code == 200 {
				t.Errorf("federation download: 200 with %d bytes, want an error", len(b))
			} else if err == nil && code != 500 {
				t.Errorf("federation download: %d %s, want 500", code, b)
			}
			r = s.do(t, http.MethodGet, hostA, thumbPath, aliceToken, nil, nil)
			wantError(t, r, http.StatusInternalServerError, "M_UNKNOWN")

			logged := `level=ERROR msg="stored content is damaged" media=mxc://` + hostA + "/" + id + " chunk=" + h.String()
			if n := strings.Count(s.log.String()[logStart:], logged); n != 1 {
				t.Errorf("the damage of chunk %s is logged %d times, want once", h.Short(), n)
			}
			code, out, _ := runMain(t, "fsck", "-config", cfgFile)
			if code != 1 || !strings.Contains(out, "problem: recorded-damage chunk "+h.String()) ||
				!strings.Contains(out, "damaged: mxc://"+hostA+"/"+id) {
				t.Errorf("fsck: exit %d, want 1 listing the recorded damage of %s:\n%s", code, h.Short(), out)
			}

			code, out, errs := runMain(t, "fsck", "-config", cfgFile, "-repair-from", backup)
			if code != 0 || !strings.Contains(out, "repaired: chunk "+h.String()) || !strings.Contains(out, "healthy") {
				t.Fatalf("fsck -repair-from: exit %d, want 0, repaired and healthy:\n%s%s", code, out, errs)
			}
			if r, err := get(nil); err != nil || r.Status != 200 || !bytes.Equal(r.Body, data) {
				t.Fatalf("download after repair: %v", err)
			}
			if code, b, err := federation(); err != nil || code != 200 || !bytes.Equal(b, data) {
				t.Errorf("federation download after repair: %d %v", code, err)
			}
			if code, out, _ := runMain(t, "fsck", "-config", cfgFile); code != 0 {
				t.Errorf("fsck after repair: exit %d:\n%s", code, out)
			}
		})
	}

	// No thumbnail was made from damaged bytes.
	s.stop(t)
	db, err := index.Open(filepath.Join(s.dataDir, "index"), index.Options{ReadOnly: true, MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.ScanThumbnails(func(src cas.Hash, spec string, _ index.ThumbRecord, _ error) error {
		t.Errorf("a thumbnail was stored: %s %s", src.Short(), spec)
		return nil
	})
}

func flipByte(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	b[len(b)/2] ^= 0x01
	return os.WriteFile(path, b, 0o600)
}

func truncateHalf(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.Truncate(path, fi.Size()/2)
}
