package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/mxcas/mxcas/config"
)

// 200 requests at once, uploads and downloads, over small limits: each is
// answered 200 or 429 M_LIMIT_EXCEEDED with Retry-After and retry_after_ms,
// never 5xx, never hung (the client's e2eBound is the safety net). The
// rates refill one token in 100 s, so only the bursts pass however slow
// the machine.
func TestRateLimitBurstE2E(t *testing.T) {
	s := startE2E(t, func(c *config.Config) {
		c.RateLimits.Upload = config.RateKind{PerUser: config.Rate{Rate: 0.01, Burst: 5}}
		c.RateLimits.Download = config.RateKind{PerUser: config.Rate{Rate: 0.01, Burst: 10}, PerIP: config.Rate{Rate: 0.01, Burst: 150}}
	})
	id := s.upload(t, hostA, bobToken, "", "text/plain", []byte("shared"))

	type result struct {
		upload bool
		resp   *e2eResp
		err    error
	}
	results := make(chan result, 200)
	var wg sync.WaitGroup
	for i := range 200 {
		upload := i%2 == 0
		wg.Go(func() {
			method, path, body := http.MethodGet, "/_matrix/client/v1/media/download/a.test/"+id, []byte(nil)
			if upload {
				method, path, body = http.MethodPost, "/_matrix/media/v3/upload", bytes.Repeat([]byte{byte(i)}, 4096)
			}
			req, err := s.request(context.Background(), method, hostA, path, aliceToken, bytes.NewReader(body))
			if err == nil {
				var r *e2eResp
				r, err = s.roundTrip(req)
				results <- result{upload, r, err}
				return
			}
			results <- result{upload, nil, err}
		})
	}
	wg.Wait()
	close(results)

	passed := map[bool]int{}
	for res := range results {
		if res.err != nil {
			t.Errorf("request failed: %v", res.err)
			continue
		}
		r := res.resp
		switch r.Status {
		case http.StatusOK:
			passed[res.upload]++
		case http.StatusTooManyRequests:
			var e struct {
				Errcode      string `json:"errcode"`
				RetryAfterMS int64  `json:"retry_after_ms"`
			}
			json.Unmarshal(r.Body, &e)
			secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
			if e.Errcode != "M_LIMIT_EXCEEDED" || e.RetryAfterMS <= 0 || err != nil || secs <= 0 {
				t.Errorf("%s: 429 with Retry-After %q, body %s; want M_LIMIT_EXCEEDED, retry_after_ms and Retry-After > 0",
					r.what, r.Header.Get("Retry-After"), short(r.Body))
			}
		default:
			t.Errorf("%s: status %d %s, want 200 or 429", r.what, r.Status, short(r.Body))
		}
	}
	// Alice's bursts pass (a token may come back during the test, no more).
	for upload, burst := range map[bool]int{true: 5, false: 10} {
		if n := passed[upload]; n < burst || n >= 100 {
			t.Errorf("%s passed: %d of 100, want the burst of %d (and some refused)", kindName(upload), n, burst)
		}
	}
	// Bob is limited on his own: his downloads still pass.
	wantStatus(t, s.download(t, hostA, "a.test", id, bobToken), http.StatusOK)
}

func kindName(upload bool) string {
	if upload {
		return "uploads"
	}
	return "downloads"
}
