package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/mxcas/mxcas/matrix"
)

// Homeserver is one homeserver mxcas serves media for.
type Homeserver struct {
	// Name is the server name in mxc URIs and the Host it is reached by.
	Name string
	// ClientAPI is the base URL whose /_matrix/client/v3/account/whoami
	// checks access tokens.
	ClientAPI string
	// Admins are user IDs with admin rights over this homeserver's media.
	Admins []string
	// StaticTokens maps tokens to user IDs without asking the homeserver.
	StaticTokens map[string]string
	// SigningKey, when set, is served at /_matrix/key/v2/server and signs
	// our federation requests.
	SigningKey *matrix.SigningKey
}

// AuthOptions configure token checks.
type AuthOptions struct {
	CacheTTL  time.Duration // how long a whoami answer is trusted (default 2 min)
	CacheSize int           // tokens cached (default 10000)
	Timeout   time.Duration // one whoami call (default 10 s)
	Client    *http.Client  // default: a client with Timeout
}

// user is who a request is from.
type user struct {
	ID    string
	Guest bool
}

type cacheKey struct{ server, token, asUser string }

// authenticator checks tokens against each homeserver's whoami, with a
// cache. Safe for concurrent use.
type authenticator struct {
	opts  AuthOptions
	cache *expirable.LRU[cacheKey, user]
	authCounters
}

func newAuthenticator(o AuthOptions) *authenticator {
	if o.CacheTTL == 0 {
		o.CacheTTL = 2 * time.Minute
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 10000
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	a := &authenticator{opts: o}
	if o.CacheTTL > 0 {
		a.cache = expirable.NewLRU[cacheKey, user](o.CacheSize, nil, o.CacheTTL)
	}
	return a
}

// token returns the request's access token, from Authorization: Bearer or
// the access_token query parameter; "" when there is none.
func token(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	return r.URL.Query().Get("access_token")
}

// check returns the user behind tok on homeserver hs. asUser is an
// appservice's ?user_id=, passed on to whoami so a bridge's ghost users own
// what they upload.
func (a *authenticator) check(ctx context.Context, hs *Homeserver, tok, asUser string) (user, error) {
	if tok == "" {
		return user{}, errorf(http.StatusUnauthorized, "M_MISSING_TOKEN", "Missing access token")
	}
	if id, ok := hs.StaticTokens[tok]; ok {
		return user{ID: id}, nil
	}
	if hs.ClientAPI == "" { // static tokens only
		return user{}, errorf(http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "Unknown access token")
	}
	key := cacheKey{hs.Name, tok, asUser}
	if a.cache != nil {
		if u, ok := a.cache.Get(key); ok {
			a.hits.Add(1)
			return u, nil
		}
	}
	a.misses.Add(1)
	u, err := a.whoami(ctx, hs, tok, asUser)
	if err != nil {
		return user{}, err
	}
	if a.cache != nil {
		a.cache.Add(key, u)
	}
	return u, nil
}

func (a *authenticator) whoami(ctx context.Context, hs *Homeserver, tok, asUser string) (user, error) {
	ctx, cancel := context.WithTimeout(ctx, a.opts.Timeout)
	defer cancel()
	u := strings.TrimRight(hs.ClientAPI, "/") + "/_matrix/client/v3/account/whoami"
	if asUser != "" {
		u += "?user_id=" + url.QueryEscape(asUser)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return user{}, errorf(http.StatusBadGateway, "M_UNKNOWN", "Cannot check the access token: bad homeserver address")
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := a.opts.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return user{}, errorf(http.StatusGatewayTimeout, "M_UNKNOWN", "The homeserver did not answer the access token check in time")
		}
		return user{}, errorf(http.StatusBadGateway, "M_UNKNOWN", "Cannot reach the homeserver to check the access token")
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		var w struct {
			UserID  string `json:"user_id"`
			IsGuest bool   `json:"is_guest"`
		}
		if err := json.Unmarshal(body, &w); err != nil || !strings.HasPrefix(w.UserID, "@") {
			return user{}, errorf(http.StatusBadGateway, "M_UNKNOWN", "The homeserver's access token check gave no user ID")
		}
		return user{ID: w.UserID, Guest: w.IsGuest}, nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// The homeserver's own verdict goes to the client as it is: clients
		// act on the errcode and soft_logout (re-login or wipe the session).
		var e struct {
			Errcode    string `json:"errcode"`
			Error      string `json:"error"`
			SoftLogout *bool  `json:"soft_logout"`
		}
		json.Unmarshal(body, &e)
		if !strings.HasPrefix(e.Errcode, "M_") {
			e.Errcode = "M_UNKNOWN_TOKEN"
			if resp.StatusCode == http.StatusForbidden {
				e.Errcode = "M_FORBIDDEN"
			}
		}
		if e.Error == "" {
			e.Error = "The homeserver refused the access token"
		}
		me := &matrixError{Status: resp.StatusCode, Code: e.Errcode, Message: e.Error}
		if e.SoftLogout != nil {
			me.Extra = map[string]any{"soft_logout": *e.SoftLogout}
		}
		return user{}, me
	default:
		return user{}, errorf(http.StatusBadGateway, "M_UNKNOWN", "The homeserver failed the access token check (HTTP %d)", resp.StatusCode)
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
