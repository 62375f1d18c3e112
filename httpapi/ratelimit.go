package httpapi

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"path"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// RateKind is what a rate limit counts.
type RateKind uint8

const (
	RateUpload      RateKind = iota // upload, create, PUT upload
	RateDownload                    // downloads: client, legacy, federation
	RateThumbnail                   // thumbnails: client, legacy, federation
	RatePreview                     // preview_url
	RateRemoteFetch                 // reads that fetch uncached remote media
	numRateKinds
)

var rateKindNames = [numRateKinds]string{"upload", "download", "thumbnail", "preview", "remote_fetch"}

// String is the kind's name in the configuration ("remote_fetch").
func (k RateKind) String() string {
	if k < numRateKinds {
		return rateKindNames[k]
	}
	return fmt.Sprintf("RateKind(%d)", uint8(k))
}

// Rate is one token bucket: PerSecond requests a second on average, Burst
// at once. PerSecond 0 is unlimited.
type Rate struct {
	PerSecond float64
	Burst     int
}

// RateLimit is the buckets of one kind: per user (per origin server for
// federation requests) and per client IP.
type RateLimit struct {
	PerUser, PerIP Rate
}

// RateLimits configure rate limiting. The zero value limits nothing.
type RateLimits struct {
	// Kinds holds each kind's buckets; a kind not in it is unlimited.
	Kinds map[RateKind]RateLimit
	// ExemptAdmins: the Host's homeserver's admins are never limited.
	ExemptAdmins bool
	// ExemptUsers are user ID globs (path.Match) never limited: the
	// namespaces of appservices.
	ExemptUsers []string
	// MaxTracked bounds the buckets kept (default 100000); the least
	// recently used is forgotten first and starts full when seen again.
	MaxTracked int
}

const defaultMaxTracked = 100_000

// errBadRateLimits is wrapped by RateLimits.Validate's errors.
var errBadRateLimits = errors.New("httpapi: bad rate limits")

// Validate reports the first bad value: an unknown kind, a rate that is
// negative or not finite, a set rate with a burst under 1, a bad glob, a
// negative MaxTracked.
func (l RateLimits) Validate() error {
	for k, rl := range l.Kinds {
		if k >= numRateKinds {
			return fmt.Errorf("%w: unknown kind %v", errBadRateLimits, k)
		}
		for _, r := range []Rate{rl.PerUser, rl.PerIP} {
			if math.IsNaN(r.PerSecond) || math.IsInf(r.PerSecond, 0) || r.PerSecond < 0 || r.Burst < 0 || (r.PerSecond > 0 && r.Burst < 1) {
				return fmt.Errorf("%w: %s: rate %v burst %d", errBadRateLimits, k, r.PerSecond, r.Burst)
			}
		}
	}
	for _, g := range l.ExemptUsers {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("%w: exempt user glob %q: %v", errBadRateLimits, g, err)
		}
	}
	if l.MaxTracked < 0 {
		return fmt.Errorf("%w: MaxTracked %d is negative", errBadRateLimits, l.MaxTracked)
	}
	return nil
}

// exempt reports whether user (an admin of the request's homeserver or
// not) is never limited.
func (l *RateLimits) exempt(user string, admin bool) bool {
	if user == "" {
		return false
	}
	if admin && l.ExemptAdmins {
		return true
	}
	for _, g := range l.ExemptUsers {
		if ok, _ := path.Match(g, user); ok {
			return true
		}
	}
	return false
}

// RateLimitStats is a snapshot of rate limiting.
type RateLimitStats struct {
	Limited map[RateKind]uint64 // requests refused with 429, by kind, since New
	Tracked int                 // buckets held now
}

// bucketKey names a bucket: a kind and a user, server or IP (user IDs
// start with "@", so they never collide with a server name; perIP keeps
// IPs apart from both).
type bucketKey struct {
	kind  RateKind
	perIP bool
	who   string
}

// rateLimiter holds the limits and the buckets, in a bounded LRU. Safe for
// concurrent use; the limits are replaced whole (set), and a bucket takes
// new values the next time it is used.
type rateLimiter struct {
	limits  atomic.Pointer[RateLimits]
	resize  sync.Mutex // serialises set's store and resize
	buckets *lru.Cache[bucketKey, *rate.Limiter]
	limited [numRateKinds]atomic.Uint64
}

func newRateLimiter(l RateLimits) (*rateLimiter, error) {
	rl := &rateLimiter{}
	var err error
	if rl.buckets, err = lru.New[bucketKey, *rate.Limiter](defaultMaxTracked); err != nil {
		return nil, err
	}
	return rl, rl.set(l)
}

// set validates l and makes it the limits of every request from now on.
// Buckets already held keep their tokens.
func (rl *rateLimiter) set(l RateLimits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	c := RateLimits{ExemptAdmins: l.ExemptAdmins, ExemptUsers: append([]string(nil), l.ExemptUsers...), MaxTracked: l.MaxTracked}
	c.Kinds = make(map[RateKind]RateLimit, len(l.Kinds))
	for k, v := range l.Kinds {
		c.Kinds[k] = v
	}
	if c.MaxTracked == 0 {
		c.MaxTracked = defaultMaxTracked
	}
	rl.resize.Lock()
	defer rl.resize.Unlock()
	rl.buckets.Resize(c.MaxTracked)
	rl.limits.Store(&c)
	return nil
}

// requester is who a request is counted against: a user ID (or origin
// server), whether that user is an admin, and the client IP ("" for none).
type requester struct {
	who   string
	admin bool
	ip    string
}

// take counts one request of kind by q at now. It never waits: over a
// limit it takes nothing from any bucket and returns 429 M_LIMIT_EXCEEDED
// with the time until the request would pass.
func (rl *rateLimiter) take(now time.Time, kind RateKind, q requester) error {
	l := rl.limits.Load()
	lim, ok := l.Kinds[kind]
	if !ok || l.exempt(q.who, q.admin) {
		return nil
	}
	var held [2]*rate.Reservation
	n := 0
	var wait time.Duration
	for _, b := range [2]struct {
		key bucketKey
		r   Rate
	}{{bucketKey{kind, false, q.who}, lim.PerUser}, {bucketKey{kind, true, q.ip}, lim.PerIP}} {
		if b.key.who == "" || b.r.PerSecond == 0 {
			continue
		}
		res := rl.bucket(now, b.key, b.r).ReserveN(now, 1)
		if !res.OK() {
			wait = max(wait, time.Second) // cannot happen: Burst >= 1
			continue
		}
		held[n] = res
		n++
		wait = max(wait, res.DelayFrom(now))
	}
	if wait <= 0 {
		return nil
	}
	for _, res := range held[:n] {
		res.CancelAt(now)
	}
	rl.limited[kind].Add(1)
	return &matrixError{Status: http.StatusTooManyRequests, Code: "M_LIMIT_EXCEEDED",
		Message: fmt.Sprintf("Too many %s requests; try again later", kind), RetryAfter: wait}
}

// bucket returns the bucket of key, made full when it is new, with r's
// rate and burst.
func (rl *rateLimiter) bucket(now time.Time, key bucketKey, r Rate) *rate.Limiter {
	limit := rate.Limit(r.PerSecond)
	b, ok := rl.buckets.Get(key)
	if !ok {
		b = rate.NewLimiter(limit, r.Burst)
		if prev, found, _ := rl.buckets.PeekOrAdd(key, b); found {
			b = prev
		}
	}
	if b.Limit() != limit {
		b.SetLimitAt(now, limit)
	}
	if b.Burst() != r.Burst {
		b.SetBurstAt(now, r.Burst)
	}
	return b
}

func (rl *rateLimiter) stats() RateLimitStats {
	s := RateLimitStats{Limited: make(map[RateKind]uint64, numRateKinds), Tracked: rl.buckets.Len()}
	for k := range numRateKinds {
		s.Limited[k] = rl.limited[k].Load()
	}
	return s
}
