package matrix

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sync/singleflight"
)

// ErrKeyNotFound means a server's key document does not list the key ID
// asked for.
var ErrKeyNotFound = errors.New("matrix: server signing key not found")

// ErrBadKeyDocument is wrapped when a server's key document is malformed,
// for another server, expired, or not signed by one of its own keys.
var ErrBadKeyDocument = errors.New("matrix: bad server key document")

// KeyServerPath is the path of a server's own key document.
const KeyServerPath = "/_matrix/key/v2/server"

// Key fetching defaults.
const (
	// DefaultKeyMaxCache caps how long a key document is trusted.
	DefaultKeyMaxCache = 7 * 24 * time.Hour
	// DefaultKeyFailureTTL is how long a failed fetch, or a key ID
	// missing from a fresh document, is remembered.
	DefaultKeyFailureTTL = 10 * time.Second
	// DefaultKeyCacheSize is how many servers' keys (or failures) are
	// cached when KeyFetcher.CacheSize is 0.
	DefaultKeyCacheSize = 4096
	// maxKeyDocument caps the key document we read.
	maxKeyDocument = 256 << 10
)

// KeyFetcher gets the public signing keys of other servers directly from
// their GET /_matrix/key/v2/server (no notary), checks the document and
// caches it until min(valid_until_ts, now + MaxCache) in an LRU cache of
// CacheSize servers. Concurrent fetches for one server share one request;
// failures are remembered for FailureTTL.
// It is safe for concurrent use; set the fields before the first call.
type KeyFetcher struct {
	// Client sends the (unsigned) key requests: its Resolver, dialers
	// and Timeout are used, not its key. nil means a FedClient of the
	// fetcher's own with real discovery.
	Client *FedClient
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxCache is DefaultKeyMaxCache when 0.
	MaxCache time.Duration
	// FailureTTL is DefaultKeyFailureTTL when 0.
	FailureTTL time.Duration
	// CacheSize caps the cache; 0 means DefaultKeyCacheSize.
	CacheSize int

	mu     sync.Mutex
	cache  *simplelru.LRU[string, *serverKeys]
	group  singleflight.Group
	client *FedClient // Client, or the fetcher's own; set under mu
}

// serverKeys is the cached outcome of one fetch for a server.
type serverKeys struct {
	keys      map[string]ed25519.PublicKey // current and old keys by ID
	err       error                        // the failure, if the fetch failed
	fetchedAt time.Time
	expires   time.Time
}

func (f *KeyFetcher) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// initCache makes the cache on first use; f.mu is held.
func (f *KeyFetcher) initCache() {
	if f.cache == nil {
		n := f.CacheSize
		if n <= 0 {
			n = DefaultKeyCacheSize
		}
		f.cache, _ = simplelru.NewLRU[string, *serverKeys](n, nil)
	}
}

// CacheLen returns how many servers' keys or failures are cached.
func (f *KeyFetcher) CacheLen() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.initCache()
	return f.cache.Len()
}

func (f *KeyFetcher) failureTTL() time.Duration {
	if f.FailureTTL > 0 {
		return f.FailureTTL
	}
	return DefaultKeyFailureTTL
}

// PublicKey returns serverName's public key keyID ("ed25519:abc"), from
// verify_keys or old_verify_keys. A key ID missing from the document gives
// ErrKeyNotFound; a document that fails the checks ErrBadKeyDocument. The
// key is fetched at most once per FailureTTL when missing or failing.
//
// Keys from old_verify_keys are returned too; a caller verifying something
// recent rather than historic should not accept them, which this API does
// not distinguish yet.
func (f *KeyFetcher) PublicKey(ctx context.Context, serverName, keyID string) (ed25519.PublicKey, error) {
	if err := ValidateServerName(serverName); err != nil {
		return nil, err
	}
	now := f.now()
	f.mu.Lock()
	f.initCache()
	sk, _ := f.cache.Get(serverName)
	f.mu.Unlock()
	if sk == nil || !now.Before(sk.expires) || (sk.err == nil && sk.keys[keyID] == nil && now.Sub(sk.fetchedAt) >= f.failureTTL()) {
		v, err, _ := f.group.Do(serverName, func() (any, error) {
			sk, err := f.fetch(ctx, serverName)
			if err != nil && ctx.Err() != nil {
				return nil, err // our cancellation: do not cache
			}
			f.mu.Lock()
			f.cache.Add(serverName, sk)
			f.mu.Unlock()
			return sk, nil
		})
		if err != nil {
			return nil, fmt.Errorf("keys of %s: %w", serverName, err)
		}
		sk = v.(*serverKeys)
	}
	if sk.err != nil {
		return nil, sk.err
	}
	if pub := sk.keys[keyID]; pub != nil {
		return pub, nil
	}
	return nil, fmt.Errorf("%w: %s has no key %s", ErrKeyNotFound, serverName, keyID)
}

// fetch gets and checks serverName's key document. On failure it returns
// both the error and a negative cache entry holding it.
func (f *KeyFetcher) fetch(ctx context.Context, serverName string) (*serverKeys, error) {
	now := f.now()
	fail := func(err error) (*serverKeys, error) {
		err = fmt.Errorf("keys of %s: %w", serverName, err)
		return &serverKeys{err: err, fetchedAt: now, expires: now.Add(f.failureTTL())}, err
	}
	f.mu.Lock()
	if f.client == nil {
		f.client = f.Client
		if f.client == nil {
			f.client = &FedClient{}
		}
	}
	client := f.client
	f.mu.Unlock()
	resp, err := client.getUnsigned(ctx, serverName, KeyServerPath)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(remoteError(resp))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyDocument+1))
	if err != nil {
		return fail(err)
	}
	if len(body) > maxKeyDocument {
		return fail(fmt.Errorf("%w: larger than %d bytes", ErrBadKeyDocument, maxKeyDocument))
	}
	keys, validUntil, err := parseKeyDocument(body, serverName, now)
	if err != nil {
		return fail(err)
	}
	maxCache := f.MaxCache
	if maxCache <= 0 {
		maxCache = DefaultKeyMaxCache
	}
	expires := now.Add(maxCache)
	if validUntil.Before(expires) {
		expires = validUntil
	}
	return &serverKeys{keys: keys, fetchedAt: now, expires: expires}, nil
}

// keyDocument is the body of GET /_matrix/key/v2/server.
type keyDocument struct {
	ServerName   string `json:"server_name"`
	ValidUntilTS int64  `json:"valid_until_ts"`
	VerifyKeys   map[string]struct {
		Key string `json:"key"`
	} `json:"verify_keys"`
	OldVerifyKeys map[string]struct {
		Key       string `json:"key"`
		ExpiredTS int64  `json:"expired_ts"`
	} `json:"old_verify_keys"`
	Signatures map[string]map[string]json.RawMessage `json:"signatures"`
}

// parseKeyDocument checks a key document of serverName: its server_name,
// an unexpired valid_until_ts, and the signature of every verify key that
// signed it (at least one must have). It returns all keys by ID.
func parseKeyDocument(body []byte, serverName string, now time.Time) (map[string]ed25519.PublicKey, time.Time, error) {
	var doc keyDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %v", ErrBadKeyDocument, err)
	}
	if doc.ServerName != serverName {
		return nil, time.Time{}, fmt.Errorf("%w: server_name is %q, want %q", ErrBadKeyDocument, doc.ServerName, serverName)
	}
	validUntil := time.UnixMilli(doc.ValidUntilTS)
	if !validUntil.After(now) {
		return nil, time.Time{}, fmt.Errorf("%w: valid_until_ts %d has passed", ErrBadKeyDocument, doc.ValidUntilTS)
	}
	keys := make(map[string]ed25519.PublicKey)
	signed := false
	for id, k := range doc.VerifyKeys {
		pub, err := decodePublicKey(id, k.Key)
		if err != nil {
			if strings.HasPrefix(id, keyAlgorithm+":") {
				return nil, time.Time{}, err
			}
			continue // an algorithm we do not know
		}
		if _, ok := doc.Signatures[serverName][id]; ok {
			// A key that signed must have signed right; one that did
			// not is allowed.
			if err := VerifyJSON(body, serverName, id, pub); err != nil {
				return nil, time.Time{}, fmt.Errorf("%w: signature by %s: %w", ErrBadKeyDocument, id, err)
			}
			signed = true
		}
		keys[id] = pub
	}
	if !signed {
		return nil, time.Time{}, fmt.Errorf("%w: not signed by any of its verify_keys", ErrBadKeyDocument)
	}
	for id, k := range doc.OldVerifyKeys {
		if _, ok := keys[id]; ok {
			continue
		}
		if pub, err := decodePublicKey(id, k.Key); err == nil {
			keys[id] = pub
		}
	}
	return keys, validUntil, nil
}

// decodePublicKey decodes an ed25519 key of a key document.
func decodePublicKey(id, key string) (ed25519.PublicKey, error) {
	if !strings.HasPrefix(id, keyAlgorithm+":") {
		return nil, fmt.Errorf("%w: key %q: unsupported algorithm", ErrBadKeyDocument, id)
	}
	raw, err := decodeBase64(key)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: key %q is not %d bytes of base64", ErrBadKeyDocument, id, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// KeyDocument builds our own GET /_matrix/key/v2/server answer for
// serverName: k as the only verify key, no old keys, valid until
// validUntil, signed by k. The result is canonical JSON.
func KeyDocument(serverName string, k SigningKey, validUntil time.Time) ([]byte, error) {
	if err := ValidateServerName(serverName); err != nil {
		return nil, err
	}
	if err := k.check(); err != nil {
		return nil, err
	}
	doc := map[string]any{
		"server_name":     serverName,
		"valid_until_ts":  validUntil.UnixMilli(),
		"verify_keys":     map[string]any{k.ID: map[string]string{"key": base64.RawStdEncoding.EncodeToString(k.Public())}},
		"old_verify_keys": map[string]any{},
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return SignJSON(raw, serverName, k)
}
