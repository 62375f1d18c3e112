package media

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode"

	"github.com/mxcas/mxcas/index"
)

// ErrQuotaExceeded: the upload would take its uploader past a quota. The
// error is a *QuotaError, which says which limit.
var ErrQuotaExceeded = errors.New("media: upload quota exceeded")

// Quota bounds what the users it names may store. A zero limit is no limit
// in that dimension.
type Quota struct {
	// Users is a glob over user IDs: "*" matches any run of characters
	// (":" and "/" too), "?" any one character, anything else itself,
	// case-sensitively ("@*:example.org", "@bot-*:*").
	Users string
	// MaxBytes caps the logical bytes of the user's local media: the sum of
	// their sizes, identical content uploaded twice counting twice (dedup
	// saves the store space, not the user quota).
	MaxBytes int64
	// MaxFiles caps the number of the user's local media.
	MaxFiles int64
	// MaxPending caps the user's created IDs without content; it replaces
	// Options.MaxPendingPerUser for the users it names. Over it, Create is
	// ErrPendingLimit, as over the store-wide cap.
	MaxPending int
}

// QuotaError says which limit an upload would pass. It matches
// ErrQuotaExceeded with errors.Is.
type QuotaError struct {
	User string
	// Limit is "max_bytes" or "max_files"; Max its value; Used what the user
	// had (stored and in flight) before this upload.
	Limit string
	Max   int64
	Used  int64
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("%v: %s %d (%s has %d)", ErrQuotaExceeded, e.Limit, e.Max, e.User, e.Used)
}

// Unwrap makes errors.Is(err, ErrQuotaExceeded) hold.
func (e *QuotaError) Unwrap() error { return ErrQuotaExceeded }

// ValidateQuotas checks a list of quotas as SetQuotas does: each glob can
// match a user ID (not empty, starts with "@", "*" or "?", no space or
// control character), no limit is negative.
func ValidateQuotas(qs []Quota) error {
	for i, q := range qs {
		if q.Users == "" || !strings.ContainsAny(q.Users[:1], "@*?") ||
			strings.ContainsFunc(q.Users, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return fmt.Errorf("media: quota %d: Users %q is not a user ID glob", i+1, q.Users)
		}
		if q.MaxBytes < 0 || q.MaxFiles < 0 || q.MaxPending < 0 {
			return fmt.Errorf("media: quota %d (%s): a limit is negative", i+1, q.Users)
		}
	}
	return nil
}

// globPattern parses a Quota.Users glob into the tokens like matches:
// "*" any run of characters, "?" any one, anything else itself.
func globPattern(g string) []likeToken {
	var toks []likeToken
	for _, r := range g {
		switch r {
		case '*':
			toks = append(toks, likeToken{any: true})
		case '?':
			toks = append(toks, likeToken{one: true})
		default:
			toks = append(toks, likeToken{r: r})
		}
	}
	return toks
}

// matchGlob reports whether s matches the glob pattern (see Quota.Users).
func matchGlob(pattern, s string) bool { return like(globPattern(pattern), s) }

// quotaRule is a Quota with its glob parsed.
type quotaRule struct {
	Quota
	users []likeToken
}

func newRules(qs []Quota) []quotaRule {
	rules := make([]quotaRule, len(qs))
	for i, q := range qs {
		rules[i] = quotaRule{Quota: q, users: globPattern(q.Users)}
	}
	return rules
}

// quotas holds the quotas in force and what each user's uploads in flight
// have reserved against them. Safe for concurrent use.
//
// Why reservations: the index's usage counters (s/u/<user>) move only when
// an upload commits, so two uploads checking them at once would both see
// room for the last bytes. Each upload of a user under a quota therefore
// reserves one file and the bytes it declared (or, for a body of unknown
// length, the bytes as they are read), and a check counts the committed
// usage plus every reservation of the user. An upload's commit and the
// release of its reservation are one step for the checks: commits hold
// the user's lock shared, checks hold it exclusively, so a check never
// sees an upload counted twice (index and reservation) or not at all.
// Commits of one user still run together (and share their syncs); a
// user's check waits for that user's commits in progress, no one else's.
type quotas struct {
	mu   sync.Mutex // guards list and users, and the counts in each userHolds
	list []quotaRule
	// users holds the users with uploads in flight under a quota.
	users map[string]*userHolds
}

// userHolds is what one user's uploads in flight hold.
type userHolds struct {
	// rw orders the user's commits (shared) before and after checks
	// (exclusive).
	rw           sync.RWMutex
	files, bytes int64 // reserved, under quotas.mu
	refs         int   // holds that point here, under quotas.mu
}

// match returns the first quota naming user, or false.
func (q *quotas) match(user string) (Quota, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.matchLocked(user)
}

func (q *quotas) matchLocked(user string) (Quota, bool) {
	for _, r := range q.list {
		if like(r.users, user) {
			return r.Quota, true
		}
	}
	return Quota{}, false
}

// SetQuotas replaces the quotas in force, first match wins, for every
// check from now on (uploads in flight keep their reservations). A list
// that does not validate (a glob that cannot match a user ID, a negative
// limit) is refused whole and the quotas in force stay. Safe for
// concurrent use.
func (s *Store) SetQuotas(qs []Quota) error {
	if err := ValidateQuotas(qs); err != nil {
		return err
	}
	rules := newRules(qs)
	s.quotas.mu.Lock()
	defer s.quotas.mu.Unlock()
	s.quotas.list = rules
	return nil
}

// Quotas returns a copy of the quotas in force.
func (s *Store) Quotas() []Quota {
	s.quotas.mu.Lock()
	defer s.quotas.mu.Unlock()
	qs := make([]Quota, len(s.quotas.list))
	for i, r := range s.quotas.list {
		qs[i] = r.Quota
	}
	return qs
}

// quotaHold is one upload's reservation against its user's quota; the
// zero hold (no user, or no byte or file limit) checks nothing.
type quotaHold struct {
	s     *Store
	user  string
	u     *userHolds // nil: nothing held
	bytes int64      // reserved bytes (and one file while u is set)
}

// reserveQuota checks that user may store one more file of declared bytes
// (-1: unknown) and reserves them. It reads no body: a declared size over
// what is left fails here. Release the hold when the upload is given up;
// commit the upload's record through it.
func (s *Store) reserveQuota(user string, declared int64) (*quotaHold, error) {
	h := &quotaHold{s: s, user: user}
	if user == "" {
		return h, nil
	}
	q := &s.quotas
	q.mu.Lock()
	rule, ok := q.matchLocked(user)
	if !ok || (rule.MaxBytes == 0 && rule.MaxFiles == 0) {
		q.mu.Unlock()
		return h, nil
	}
	u := q.users[user]
	if u == nil {
		if q.users == nil {
			q.users = make(map[string]*userHolds)
		}
		u = &userHolds{}
		q.users[user] = u
	}
	u.refs++
	h.u = u
	q.mu.Unlock()

	err := h.check(func(used index.Usage, rule Quota) error {
		files, bytes := used.Count+u.files, used.Bytes+u.bytes
		if rule.MaxFiles > 0 && files+1 > rule.MaxFiles {
			return &QuotaError{User: user, Limit: "max_files", Max: rule.MaxFiles, Used: files}
		}
		if rule.MaxBytes > 0 && bytes+max(declared, 0) > rule.MaxBytes {
			return &QuotaError{User: user, Limit: "max_bytes", Max: rule.MaxBytes, Used: bytes}
		}
		u.files++
		h.bytes = max(declared, 0)
		u.bytes += h.bytes
		return nil
	})
	if err != nil {
		h.release()
		return nil, err
	}
	return h, nil
}

// check runs fn with the user's committed usage and the quota naming them
// now (zero when none does), holding the user's lock exclusively and
// quotas.mu, so no commit of the user runs meanwhile.
func (h *quotaHold) check(fn func(used index.Usage, rule Quota) error) error {
	h.u.rw.Lock()
	defer h.u.rw.Unlock()
	used, err := h.s.idx.UserUsage(h.user)
	if err != nil {
		return err
	}
	q := &h.s.quotas
	q.mu.Lock()
	defer q.mu.Unlock()
	rule, _ := q.matchLocked(h.user)
	return fn(used, rule)
}

// grow reserves n more bytes for an upload that has read past what it
// reserved, or fails with a *QuotaError when that passes the user's
// max_bytes (as the quota is now: SetQuotas may have changed it).
func (h *quotaHold) grow(n int64) error {
	return h.check(func(used index.Usage, rule Quota) error {
		others := h.u.bytes - h.bytes
		if rule.MaxBytes > 0 && used.Bytes+others+h.bytes+n > rule.MaxBytes {
			return &QuotaError{User: h.user, Limit: "max_bytes", Max: rule.MaxBytes, Used: used.Bytes + others}
		}
		h.bytes += n
		h.u.bytes += n
		return nil
	})
}

// commit runs commit, the upload's record commit, and releases the hold
// as one step for other uploads' checks.
func (h *quotaHold) commit(commit func() error) error {
	if h.u == nil {
		return commit()
	}
	u := h.u
	u.rw.RLock()
	defer u.rw.RUnlock()
	err := commit()
	h.release()
	return err
}

// release gives back what the hold reserved. Later calls do nothing.
func (h *quotaHold) release() {
	if h.u == nil {
		return
	}
	q := &h.s.quotas
	q.mu.Lock()
	defer q.mu.Unlock()
	h.u.files--
	h.u.bytes -= h.bytes
	if h.u.refs--; h.u.refs == 0 {
		delete(q.users, h.user)
	}
	h.u, h.bytes = nil, 0
}

// reader cuts body at the user's quota: bytes read beyond what the hold
// reserved are reserved as they come, and the read that would pass
// max_bytes fails with the *QuotaError instead. The zero hold returns body.
func (h *quotaHold) reader(body io.Reader) io.Reader {
	if h.u == nil {
		return body
	}
	return &quotaReader{h: h, body: body}
}

type quotaReader struct {
	h    *quotaHold
	body io.Reader
	read int64
}

func (r *quotaReader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	r.read += int64(n)
	if over := r.read - r.h.bytes; over > 0 {
		if qerr := r.h.grow(over); qerr != nil {
			return 0, qerr
		}
	}
	return n, err
}

// pendingCap is user's cap on created IDs without content: the first
// matching quota's MaxPending when it sets one, else
// Options.MaxPendingPerUser (not positive: none).
func (s *Store) pendingCap(user string) (limit int, what string) {
	if rule, ok := s.quotas.match(user); ok && rule.MaxPending > 0 {
		return rule.MaxPending, fmt.Sprintf("quota %s max_pending", rule.Users)
	}
	return s.opts.MaxPendingPerUser, "max_pending_per_user"
}
