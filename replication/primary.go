package replication

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
)

// The protocol's paths and limits (doc.go).
const (
	pathPrefix  = "/_mxcas/replication/v1/"
	pathStatus  = pathPrefix + "status"
	pathChanges = pathPrefix + "changes"
	pathChunks  = pathPrefix + "chunks"

	defaultChangesLimit = 256
	maxChangesLimit     = 1000
	maxChangesBytes     = 16 << 20
	maxChunksPerRequest = 256
	// unavailableLen is the frame length of a chunk the primary cannot
	// serve intact.
	unavailableLen = 0xFFFFFFFF
	frameHeaderLen = cas.HashSize + 4
)

// maxWait caps a long poll's wait_ms (doc.go); a variable so tests can
// make a poll that only Done or a change can end.
var maxWait = 30 * time.Second

// PrimaryOptions configure NewPrimary.
type PrimaryOptions struct {
	Store  *media.Store
	Secret []byte // the shared secret; at least 16 bytes
	Logger *slog.Logger
	Now    func() time.Time // nil: time.Now
	// Done, when closed, ends waiting long polls at once (answered with no
	// change), so that http.Server.Shutdown need not wait up to 30 s for
	// them: close it when shutting down.
	Done <-chan struct{}
}

// minSecretLen is the shortest secret accepted, on both sides.
const minSecretLen = 16

func checkSecret(secret []byte) error {
	if len(secret) < minSecretLen {
		return fmt.Errorf("replication: the shared secret has %d bytes, want at least %d", len(secret), minSecretLen)
	}
	return nil
}

// primary is the handler NewPrimary returns.
type primary struct {
	store  *media.Store
	secret []byte
	log    *slog.Logger
	now    func() time.Time
	done   <-chan struct{}
}

// NewPrimary returns the handler serving o.Store's change log and chunks
// under /_mxcas/replication/v1/ (doc.go). It is safe for concurrent use.
func NewPrimary(o PrimaryOptions) (http.Handler, error) {
	if o.Store == nil {
		return nil, errors.New("replication: PrimaryOptions.Store is nil")
	}
	if err := checkSecret(o.Secret); err != nil {
		return nil, err
	}
	p := &primary{store: o.Store, secret: o.Secret, log: o.Logger, now: o.Now, done: o.Done}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// httpError is an error answer: status, errcode and message.
type httpError struct {
	status  int
	code    string
	message string
}

func (e *httpError) Error() string { return e.message }

func badRequest(format string, a ...any) *httpError {
	return &httpError{http.StatusBadRequest, "MXCAS_BAD_REQUEST", fmt.Sprintf(format, a...)}
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Code    string `json:"errcode"`
	Message string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (p *primary) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := p.serve(w, r); err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			p.log.Error("replication request failed", "path", r.URL.Path, "err", err)
			he = &httpError{http.StatusInternalServerError, "MXCAS_INTERNAL", "internal error"}
		}
		writeJSON(w, he.status, errorBody{he.code, he.message})
	}
}

// serve authenticates r, then routes it. An error is answered by
// ServeHTTP; nil means the answer is written.
func (p *primary) serve(w http.ResponseWriter, r *http.Request) error {
	var body []byte
	if r.Method == http.MethodPost {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, maxChunksPerRequest*cas.HashSize+1))
		if err != nil {
			return badRequest("read body: %v", err)
		}
		if len(body) > maxChunksPerRequest*cas.HashSize {
			return &httpError{http.StatusRequestEntityTooLarge, "MXCAS_TOO_LARGE",
				fmt.Sprintf("at most %d hashes per request", maxChunksPerRequest)}
		}
	}
	if err := checkAuthorization(p.secret, r.Header.Get("Authorization"), r.Method, r.URL.RequestURI(), p.now(), body); err != nil {
		p.log.Warn("replication request refused", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
		return &httpError{http.StatusUnauthorized, "MXCAS_UNAUTHORIZED", "unauthorized: " + err.Error()}
	}
	var route func(http.ResponseWriter, *http.Request, []byte) error
	method := http.MethodGet
	switch r.URL.Path {
	case pathStatus:
		route = p.status
	case pathChanges:
		route = p.changes
	case pathChunks:
		route, method = p.chunks, http.MethodPost
	default:
		return &httpError{http.StatusNotFound, "MXCAS_NOT_FOUND", "no such replication endpoint: " + r.URL.Path}
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		return &httpError{http.StatusMethodNotAllowed, "MXCAS_METHOD", r.URL.Path + " takes " + method}
	}
	return route(w, r, body)
}

// statusBody is the answer of status.
type statusBody struct {
	Head uint64 `json:"head"`
}

func (p *primary) status(w http.ResponseWriter, _ *http.Request, _ []byte) error {
	writeJSON(w, http.StatusOK, statusBody{p.store.Head()})
	return nil
}

// wireChange is one change on the wire; Ops is base64 in JSON.
type wireChange struct {
	Seq uint64 `json:"seq"`
	Ops []byte `json:"ops"`
}

// changesBody is the answer of changes.
type changesBody struct {
	Head    uint64       `json:"head"`
	Changes []wireChange `json:"changes"`
}

// queryUint parses query parameter name, def when absent, within [lo, hi].
func queryUint(r *http.Request, name string, def, lo, hi uint64) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, badRequest("%s=%q: want an integer from %d to %d", name, s, lo, hi)
	}
	return v, nil
}

// checkHistory refuses a standby whose change after is not this primary's
// (409 MXCAS_DIVERGED): a primary restored from an older backup that has
// since made other changes under the same numbers, or a standby pointed at
// another store's primary. A digest the standby did not send, or a change
// this log no longer holds, is not checked.
func (p *primary) checkHistory(after uint64, digest string) error {
	if digest == "" || after == 0 {
		return nil
	}
	mine, err := p.store.ChangeDigest(after)
	if err != nil {
		return err
	}
	if mine != "" && mine != digest {
		return &httpError{http.StatusConflict, "MXCAS_DIVERGED",
			fmt.Sprintf("change %d here is not the standby's: the histories diverged; seed the standby again from a backup", after)}
	}
	return nil
}

func (p *primary) changes(w http.ResponseWriter, r *http.Request, _ []byte) error {
	after, err := queryUint(r, "after", 0, 0, 1<<63)
	if err != nil {
		return err
	}
	limit, err := queryUint(r, "limit", defaultChangesLimit, 1, maxChangesLimit)
	if err != nil {
		return err
	}
	waitMS, err := queryUint(r, "wait_ms", 0, 0, uint64(maxWait/time.Millisecond))
	if err != nil {
		return err
	}
	if err := p.checkHistory(after, r.URL.Query().Get("after_digest")); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(waitMS)*time.Millisecond)
	defer cancel()
	for {
		// Take the channel before reading, so a change committed in
		// between still wakes the wait.
		changed := p.store.HeadChanged()
		head := p.store.Head()
		var cs []media.Change
		if after < head {
			cs, err = p.store.Changes(after, int(limit))
			if errors.Is(err, media.ErrChangesTrimmed) {
				return &httpError{http.StatusGone, "MXCAS_TRIMMED", err.Error()}
			}
			if err != nil {
				return err
			}
		}
		if len(cs) > 0 || after > head {
			if len(cs) > 0 {
				head = max(head, cs[len(cs)-1].Seq)
			}
			writeJSON(w, http.StatusOK, changesBody{Head: head, Changes: wireChanges(cs)})
			return nil
		}
		select {
		case <-changed:
			continue
		case <-ctx.Done():
			if r.Context().Err() != nil {
				return nil // the client is gone
			}
		case <-p.done:
		}
		writeJSON(w, http.StatusOK, changesBody{Head: head, Changes: []wireChange{}})
		return nil
	}
}

// wireChanges converts cs, stopping before maxChangesBytes of operations
// (but keeping at least one).
func wireChanges(cs []media.Change) []wireChange {
	out := make([]wireChange, 0, len(cs))
	n := 0
	for _, c := range cs {
		if n += len(c.Ops); n > maxChangesBytes && len(out) > 0 {
			break
		}
		out = append(out, wireChange{c.Seq, c.Ops})
	}
	return out
}

func (p *primary) chunks(w http.ResponseWriter, r *http.Request, body []byte) error {
	if len(body) == 0 || len(body)%cas.HashSize != 0 {
		return badRequest("body of %d bytes: want 1 to %d concatenated %d-byte hashes", len(body), maxChunksPerRequest, cas.HashSize)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	var buf []byte
	var header [frameHeaderLen]byte
	for i := 0; i < len(body); i += cas.HashSize {
		h := cas.Hash(body[i : i+cas.HashSize])
		data, err := p.store.ReadChunk(h, buf)
		copy(header[:], h[:])
		if err != nil {
			p.log.Warn("replication: chunk unavailable", "chunk", h.Short(), "err", err)
			binary.BigEndian.PutUint32(header[cas.HashSize:], unavailableLen)
			data = nil
		} else {
			buf = data[:0]
			binary.BigEndian.PutUint32(header[cas.HashSize:], uint32(len(data)))
		}
		if _, err := bw.Write(header[:]); err != nil {
			return nil // the client is gone; the status is already sent
		}
		if _, err := bw.Write(data); err != nil {
			return nil
		}
	}
	bw.Flush()
	return nil
}
