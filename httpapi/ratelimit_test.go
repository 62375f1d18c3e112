package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The rate limit tests run the admin harness (a real store, static tokens,
// signed federation requests) with the API on the harness's clock, which
// moves only when a test advances it: a bucket refills only then.

// newRateTest is the admin harness limited by l, trusting X-Forwarded-For
// when trust.
func newRateTest(t *testing.T, l RateLimits, trust bool) (*adminTest, *API) {
	t.Helper()
	var clock func() time.Time // the harness's, set once it is made and before any request
	at := newAdminTest(t, func(o *Options) {
		o.RateLimits, o.TrustForwarded = l, trust
		o.Now = func() time.Time { return clock() }
	})
	clock = at.clk.Now
	return at, at.srv.Config.Handler.(*API)
}

// only limits one kind.
func only(kind RateKind, rl RateLimit) RateLimits {
	return RateLimits{Kinds: map[RateKind]RateLimit{kind: rl}}
}

const uploadPath = "/_matrix/media/v3/upload"

// fromIP sends GET path on hs.test as tok (none when empty) with
// X-Forwarded-For xff (none when empty).
func (at *adminTest) fromIP(t *testing.T, path, tok, xff string) answer {
	t.Helper()
	req, err := http.NewRequest("GET", at.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "hs.test"
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	return roundTrip(t, at.srv, req)
}

// wantLimited wants a 429 M_LIMIT_EXCEEDED whose Retry-After and
// retry_after_ms say wait (rounded up to whole seconds and milliseconds).
func wantLimited(t *testing.T, a answer, wait time.Duration) {
	t.Helper()
	var e struct {
		Errcode      string `json:"errcode"`
		RetryAfterMS *int64 `json:"retry_after_ms"`
	}
	json.Unmarshal([]byte(a.body), &e)
	wantSecs := fmt.Sprint(int64((wait + time.Second - 1) / time.Second))
	if a.status != http.StatusTooManyRequests || e.Errcode != "M_LIMIT_EXCEEDED" || e.RetryAfterMS == nil ||
		*e.RetryAfterMS != wait.Milliseconds() || a.header.Get("Retry-After") != wantSecs {
		t.Fatalf("%s: %d Retry-After %q %s, want 429 M_LIMIT_EXCEEDED, Retry-After %s, retry_after_ms %d",
			a.what, a.status, a.header.Get("Retry-After"), a.body, wantSecs, wait.Milliseconds())
	}
}

func wantStatus(t *testing.T, a answer, status int) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: %d %s, want %d", a.what, a.status, a.body, status)
	}
}

// Uploads are counted per user: over the burst a user gets 429 with the
// wait (a quarter second at 4/s: Retry-After 1, not 0), others are not
// touched, and the bucket refills with time.
func TestRateLimitPerUser(t *testing.T) {
	at, _ := newRateTest(t, only(RateUpload, RateLimit{PerUser: Rate{PerSecond: 4, Burst: 2}}), false)
	upload := func(tok string) answer {
		return at.call(t, "POST", "hs.test", uploadPath, tok, []byte("bytes"), false)
	}
	wantStatus(t, upload("alice"), 200)
	wantStatus(t, upload("alice"), 200)
	wantLimited(t, upload("alice"), 250*time.Millisecond)
	wantLimited(t, at.call(t, "POST", "hs.test", "/_matrix/media/v1/create", "alice", nil, false), 250*time.Millisecond)
	wantStatus(t, upload("bob"), 200)
	at.clk.Advance(250 * time.Millisecond)
	wantStatus(t, upload("alice"), 200)
	wantLimited(t, upload("alice"), 250*time.Millisecond)
	// Downloads are another kind: not limited here.
	wantStatus(t, at.fromIP(t, "/_matrix/client/v1/media/download/hs.test/nope", "alice", ""), 404)
}

// A limited upload is answered before its body is read: the body here
// never arrives.
func TestRateLimitBeforeBody(t *testing.T) {
	at, _ := newRateTest(t, only(RateUpload, RateLimit{PerUser: Rate{PerSecond: 1, Burst: 1}}), false)
	wantStatus(t, at.call(t, "POST", "hs.test", uploadPath, "alice", []byte("x"), false), 200)
	body, never := io.Pipe()
	defer never.Close()
	req, err := http.NewRequest("POST", at.srv.URL+uploadPath, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host, req.ContentLength = "hs.test", 1<<20
	req.Header.Set("Authorization", "Bearer alice")
	wantLimited(t, roundTrip(t, at.srv, req), time.Second)
}

// The legacy unauthenticated paths count per client IP; X-Forwarded-For
// names the client only when trusted, and then its last entry (what our
// proxy saw), never the ones the client wrote. IPv6 clients count by /64.
func TestRateLimitPerIP(t *testing.T) {
	const path = "/_matrix/media/v3/download/hs.test/nope"
	lim := only(RateDownload, RateLimit{PerIP: Rate{PerSecond: 1, Burst: 1}})

	at, _ := newRateTest(t, lim, false)
	wantStatus(t, at.fromIP(t, path, "", "203.0.113.1"), 404)
	wantLimited(t, at.fromIP(t, path, "", "203.0.113.2"), time.Second) // untrusted: all loopback
	wantLimited(t, at.fromIP(t, path, "alice", ""), time.Second)       // a user counts per IP too

	at, _ = newRateTest(t, lim, true)
	wantStatus(t, at.fromIP(t, path, "", "203.0.113.1"), 404)
	wantLimited(t, at.fromIP(t, path, "", "203.0.113.1"), time.Second)
	wantLimited(t, at.fromIP(t, path, "", "198.51.100.7, 203.0.113.1"), time.Second) // a spoofed first entry changes nothing
	wantStatus(t, at.fromIP(t, path, "", "203.0.113.1, 203.0.113.2"), 404)
	wantStatus(t, at.fromIP(t, path, "", "2001:db8:1:2::1"), 404)
	wantLimited(t, at.fromIP(t, path, "", "2001:db8:1:2:ffff::9"), time.Second) // same /64
	wantStatus(t, at.fromIP(t, path, "", "2001:db8:1:3::1"), 404)
	wantStatus(t, at.fromIP(t, path, "", ""), 404)                        // the peer: loopback
	wantLimited(t, at.fromIP(t, path, "", "not an address"), time.Second) // ignored: the peer again
}

// Admins and appservice users are exempt when configured so; everyone else
// is limited.
func TestRateLimitExempt(t *testing.T) {
	const path = "/_matrix/client/v1/media/thumbnail/hs.test/nope?width=32&height=32"
	lim := only(RateThumbnail, RateLimit{PerUser: Rate{PerSecond: 1, Burst: 1}, PerIP: Rate{PerSecond: 1, Burst: 3}})
	lim.ExemptAdmins = true
	lim.ExemptUsers = []string{"@al*:hs.test"}
	at, api := newRateTest(t, lim, false)
	for range 5 {
		wantStatus(t, at.fromIP(t, path, "admin", ""), 404)
		wantStatus(t, at.fromIP(t, path, "alice", ""), 404)
	}
	wantStatus(t, at.fromIP(t, path, "bob", ""), 404)
	wantLimited(t, at.fromIP(t, path, "bob", ""), time.Second)

	lim.ExemptAdmins, lim.ExemptUsers = false, nil
	if err := api.SetRateLimits(lim); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, at.fromIP(t, path, "admin", ""), 404)
	wantLimited(t, at.fromIP(t, path, "admin", ""), time.Second)
	// The address's three tokens: bob's, admin's (bob's refused request
	// gave its token back), alice's.
	wantStatus(t, at.fromIP(t, path, "alice", ""), 404)
	wantLimited(t, at.fromIP(t, path, "alice", ""), time.Second)
	wantLimited(t, at.fromIP(t, path, "oadmin", ""), time.Second)
}

// Federation requests count per origin server, after the signature is
// checked, whatever the address they come from.
func TestRateLimitFederationByOrigin(t *testing.T) {
	at, _ := newRateTest(t, only(RateDownload, RateLimit{PerUser: Rate{PerSecond: 1, Burst: 1}, PerIP: Rate{PerSecond: 1, Burst: 1}}), false)
	id := at.uploadAs(t, "alice", "", "", "fed")
	path := "/_matrix/federation/v1/media/download/" + id
	wantStatus(t, at.call(t, "GET", "hs.test", path, "", nil, true), 200)
	wantLimited(t, at.call(t, "GET", "hs.test", path, "", nil, true), time.Second)
	// Unsigned: refused before it counts, and not limited as origin.test.
	wantStatus(t, at.call(t, "GET", "hs.test", path, "", nil, false), 401)
	// The per-IP bucket is not the origin's: a client on the same address
	// still gets one download.
	wantStatus(t, at.fromIP(t, "/_matrix/client/v1/media/download/hs.test/"+id, "bob", ""), 200)
}

// A read of remote media not cached yet also counts as a remote fetch; a
// cached one does not.
func TestRateLimitRemoteFetch(t *testing.T) {
	at, _ := newRateTest(t, only(RateRemoteFetch, RateLimit{PerUser: Rate{PerSecond: 1, Burst: 1}}), false)
	at.remote["mxc://far.test/a"] = []byte("a")
	at.remote["mxc://far.test/b"] = []byte("b")
	const dl = "/_matrix/client/v1/media/download/far.test/"
	wantStatus(t, at.fromIP(t, dl+"a", "alice", ""), 200)
	wantStatus(t, at.fromIP(t, dl+"a", "alice", ""), 200) // cached now
	wantLimited(t, at.fromIP(t, dl+"b", "alice", ""), time.Second)
	wantLimited(t, at.fromIP(t, "/_matrix/client/v1/media/thumbnail/far.test/b?width=32&height=32", "alice", ""), time.Second)
	wantStatus(t, at.fromIP(t, dl+"b", "bob", ""), 200)
}

// The buckets are bounded by MaxTracked: the least recently used is
// forgotten, and starts full when seen again.
func TestRateLimitBucketsBounded(t *testing.T) {
	lim := only(RateDownload, RateLimit{PerUser: Rate{PerSecond: 1, Burst: 1}})
	lim.MaxTracked = 2
	at, api := newRateTest(t, lim, false)
	const path = "/_matrix/client/v1/media/download/hs.test/nope"
	wantStatus(t, at.fromIP(t, path, "alice", ""), 404)
	wantLimited(t, at.fromIP(t, path, "alice", ""), time.Second)
	for _, tok := range []string{"bob", "admin", "oadmin"} {
		wantStatus(t, at.fromIP(t, path, tok, ""), 404)
	}
	if s := api.RateLimitStats(); s.Tracked != 2 || s.Limited[RateDownload] != 1 {
		t.Errorf("stats = %+v, want 2 buckets tracked, 1 download limited", s)
	}
	wantStatus(t, at.fromIP(t, path, "alice", ""), 404) // forgotten: full again
}

// SetRateLimits changes the limits of the next request; bad limits are
// refused whole and the old ones stay; it is safe while requests run.
func TestSetRateLimitsLive(t *testing.T) {
	at, api := newRateTest(t, RateLimits{}, false)
	const path = "/_matrix/client/v1/media/download/hs.test/nope"
	for range 3 {
		wantStatus(t, at.fromIP(t, path, "alice", ""), 404)
	}
	lim := only(RateDownload, RateLimit{PerUser: Rate{PerSecond: 1, Burst: 1}})
	if err := api.SetRateLimits(lim); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, at.fromIP(t, path, "alice", ""), 404)
	wantLimited(t, at.fromIP(t, path, "alice", ""), time.Second)
	for _, bad := range []RateLimits{
		only(RateDownload, RateLimit{PerUser: Rate{PerSecond: -1, Burst: 1}}),
		only(RateDownload, RateLimit{PerIP: Rate{PerSecond: 1, Burst: 0}}),
		only(numRateKinds, RateLimit{}),
		{ExemptUsers: []string{"[x"}},
		{MaxTracked: -1},
	} {
		if err := api.SetRateLimits(bad); err == nil {
			t.Errorf("SetRateLimits(%+v) = nil, want an error", bad)
		}
	}
	wantLimited(t, at.fromIP(t, path, "alice", ""), time.Second)
	// A slower rate applies to the bucket alice already has.
	if err := api.SetRateLimits(only(RateDownload, RateLimit{PerUser: Rate{PerSecond: 0.5, Burst: 1}})); err != nil {
		t.Fatal(err)
	}
	wantLimited(t, at.fromIP(t, path, "alice", ""), 2*time.Second)
	if err := api.SetRateLimits(RateLimits{}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, at.fromIP(t, path, "alice", ""), 404)

	// Concurrent replacement and requests: every answer is one of the two
	// configurations' (the race detector checks the rest).
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 50 {
			l := RateLimits{}
			if i%2 == 0 {
				l = lim
			}
			if err := api.SetRateLimits(l); err != nil {
				t.Error(err)
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for range 10 {
				req, _ := http.NewRequest("GET", at.srv.URL+path, nil)
				req.Host = "hs.test"
				req.Header.Set("Authorization", "Bearer bob")
				resp, err := at.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 404 && resp.StatusCode != 429 {
					t.Errorf("concurrent download: %d, want 404 or 429", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
}

// RateKind names are the configuration's.
func TestRateKindString(t *testing.T) {
	var got []string
	for k := range numRateKinds + 1 {
		got = append(got, k.String())
	}
	if s := strings.Join(got, " "); s != "upload download thumbnail preview remote_fetch RateKind(5)" {
		t.Errorf("kinds = %s", s)
	}
}
