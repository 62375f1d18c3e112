package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/httpapi"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/replication"
)

// Replication's wiring (issue 17). With [replication] listen the server
// serves its change log and chunks (replication.NewPrimary) on a listener
// of its own; with primary it is a standby: its store is a follower that
// repairs damaged chunks from the primary, a replication.Standby follows
// the primary in the background, and the API refuses writes. `mxcas promote` (admin op /promote) stops the follower,
// promotes the store and lifts the refusal, and writes DATA/promoted so
// that a restart with primary still configured is refused rather than
// following the old primary with a store that has moved on.

// promotedFile marks a store promoted from standby to primary.
const promotedFile = "promoted"

// minSecretBytes is the least length of the shared secret.
const minSecretBytes = 16

// errNotStandby refuses `mxcas promote` on a server that is no standby.
var errNotStandby = errors.New("not a standby")

// replicationSetup is what serve reads and checks for [replication] before
// it opens the store: the secret, the listener's TLS and the standby's
// client.
type replicationSetup struct {
	cfg    config.Replication
	secret []byte
	tls    *tls.Config  // the listener's, nil for plain HTTP
	client *http.Client // the standby's, nil for replication's default
	// repair is a standby's source of damaged chunks: its primary.
	repair cas.Reader
}

// prepareReplication reads the secret and TLS files the configuration
// names; the zero setup when replication is off.
func prepareReplication(cfg config.Replication) (replicationSetup, error) {
	rs := replicationSetup{cfg: cfg}
	if cfg.Listen == "" && cfg.Primary == "" {
		return rs, nil
	}
	var err error
	if rs.secret, err = readSecret(cfg.SecretFile); err != nil {
		return rs, err
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return rs, fmt.Errorf("replication: tls_cert/tls_key: %w", err)
		}
		rs.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if cfg.Primary != "" && cfg.TLSCA != "" {
		if rs.client, err = replicationClient(cfg.TLSCA); err != nil {
			return rs, err
		}
	}
	if cfg.Primary != "" {
		src := replication.NewChunkSource(cfg.Primary, rs.secret, rs.client)
		if err := src.Err(); err != nil {
			return rs, err
		}
		rs.repair = src
	}
	return rs, nil
}

// readSecret reads the shared secret from path: its contents without
// surrounding white space, at least minSecretBytes long, in a file others
// cannot read.
func readSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("replication: secret_file: %w", err)
	}
	if fi.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("replication: secret_file %s is readable by every user (mode %v): chmod o-r it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("replication: secret_file: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < minSecretBytes {
		return nil, fmt.Errorf("replication: secret_file %s holds %d bytes; a secret needs at least %d", path, len(b), minSecretBytes)
	}
	return b, nil
}

// replicationClient is a standby's client trusting the CA in caFile
// besides the system's roots. No overall timeout: the standby bounds its
// own requests (long polls included).
func replicationClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("replication: tls_ca: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("replication: tls_ca %s: no PEM certificate in it", caFile)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: t}, nil
}

// checkNotPromoted refuses to follow a primary with a store that was
// promoted: it has changes of its own the primary never had.
func checkNotPromoted(dataDir string) error {
	b, err := os.ReadFile(filepath.Join(dataDir, promotedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("replication: this store was promoted to a primary (%s: %s): it cannot follow a primary again; "+
		"remove [replication] primary, or seed a new standby from a backup of the primary", filepath.Join(dataDir, promotedFile), bytes.TrimSpace(b))
}

// replicator is the running server's replication: its listener, its
// follower and its role.
type replicator struct {
	rs  replicationSetup
	st  *media.Store
	log *slog.Logger

	srv     *http.Server // the replication listener; nil when none
	srvDone chan struct{}
	stopSrv context.CancelFunc // ends the listener's requests (long polls)

	mu      sync.Mutex
	api     *httpapi.API         // nil until the API exists
	standby *replication.Standby // nil unless following
	cancel  context.CancelFunc   // stops the follower
	runDone chan struct{}        // closed when the follower's Run returned
	runErr  error                // why Run stopped by itself
}

// startReplication starts the listener and the follower rs asks for over
// st. stop ends both; it must be called before st closes.
func startReplication(rs replicationSetup, st *media.Store, logger *slog.Logger) (*replicator, error) {
	r := &replicator{rs: rs, st: st, log: logger}
	if rs.cfg.Listen != "" {
		if err := r.listen(); err != nil {
			return nil, err
		}
	}
	if rs.cfg.Primary != "" {
		sb, err := replication.NewStandby(replication.StandbyOptions{
			Store: st, Primary: rs.cfg.Primary, Secret: rs.secret, Client: rs.client, Logger: logger,
		})
		if err != nil {
			r.stop()
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		r.standby, r.cancel, r.runDone = sb, cancel, make(chan struct{})
		go r.follow(ctx, sb)
		logger.Info("standby: following the primary; writes are refused", "primary", rs.cfg.Primary, "applied", st.Head())
	}
	return r, nil
}

// listen serves the change log and chunks on the replication listener.
func (r *replicator) listen() error {
	h, err := replication.NewPrimary(replication.PrimaryOptions{Store: r.st, Secret: r.rs.secret, Logger: r.log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", r.rs.cfg.Listen)
	if err != nil {
		return fmt.Errorf("replication listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stopSrv = cancel
	r.srv = &http.Server{Handler: h, TLSConfig: r.rs.tls, BaseContext: func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(r.log.Handler(), slog.LevelWarn)}
	r.srvDone = make(chan struct{})
	go func() {
		defer close(r.srvDone)
		var err error
		if r.rs.tls != nil {
			err = r.srv.ServeTLS(ln, "", "")
		} else {
			err = r.srv.Serve(ln)
		}
		if err != http.ErrServerClosed {
			r.log.Error("replication listener failed", "err", err)
		}
	}()
	r.log.Info("replication listening", "addr", ln.Addr().String(), "tls", r.rs.tls != nil, "head", r.st.Head())
	return nil
}

// follow runs the standby until it is stopped or fails for good; the
// server goes on serving reads either way.
func (r *replicator) follow(ctx context.Context, sb *replication.Standby) {
	defer close(r.runDone)
	err := sb.Run(ctx)
	if ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	r.runErr = err
	r.mu.Unlock()
	hint := "the server goes on serving reads"
	switch {
	case errors.Is(err, replication.ErrUnauthorized):
		hint = "check that secret_file holds the primary's secret (and the clocks agree), then restart; " + hint
	case errors.Is(err, replication.ErrTrimmed):
		hint = "seed this standby again from a backup of the primary; " + hint
	}
	r.log.Error("standby: stopped following the primary", "primary", r.rs.cfg.Primary, "err", err, "hint", hint)
}

// setAPI gives the replicator the API whose refusal promotion lifts.
func (r *replicator) setAPI(api *httpapi.API) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.api = api
}

// stop stops the follower and the listener.
func (r *replicator) stop() {
	r.stopFollowing()
	if r.srv != nil {
		r.stopSrv()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if r.srv.Shutdown(ctx) != nil {
			r.srv.Close()
		}
		<-r.srvDone
	}
}

// stopFollowing cancels the follower's Run and waits for it.
func (r *replicator) stopFollowing() {
	r.mu.Lock()
	cancel, done := r.cancel, r.runDone
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// primaryStatus is `mxcas replication status` on a primary.
type primaryStatus struct {
	Role   string `json:"role"` // "primary"
	Head   uint64 `json:"head"`
	Listen string `json:"listen,omitempty"` // the replication listener's configured address
}

// standbyStatus is `mxcas replication status` on a standby: the
// follower's status, with why it stopped when it did.
type standbyStatus struct {
	replication.Status
	Following bool `json:"following"`
}

// status is the server's replication status.
func (r *replicator) status() any {
	r.mu.Lock()
	sb, runErr := r.standby, r.runErr
	r.mu.Unlock()
	if sb == nil {
		return primaryStatus{Role: "primary", Head: r.st.Head(), Listen: r.rs.cfg.Listen}
	}
	s := standbyStatus{Status: sb.Status(), Following: runErr == nil}
	s.Role = "standby"
	if runErr != nil && s.Err == "" {
		s.Err = runErr.Error()
	}
	return s
}

// promote turns a standby into a primary: the follower stops, the store
// logs its own changes from the last applied number on, the API takes
// writes. It returns the new status.
func (r *replicator) promote() (any, error) {
	r.mu.Lock()
	promoting := r.standby != nil
	r.mu.Unlock()
	if !promoting {
		return nil, fmt.Errorf("%w: this server has no [replication] primary, or was promoted already", errNotStandby)
	}
	r.stopFollowing()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.standby == nil {
		return nil, fmt.Errorf("%w: promoted meanwhile by another call", errNotStandby)
	}
	r.st.Promote()
	r.st.SetRepairSource(nil) // the former primary may be gone
	r.standby, r.cancel = nil, nil
	mark := fmt.Sprintf("promoted at %s from standby of %s at change %d\n",
		time.Now().UTC().Format(time.RFC3339), r.rs.cfg.Primary, r.st.Head())
	if err := r.st.WriteDataFile(promotedFile, []byte(mark)); err != nil {
		r.log.Error("promote: cannot mark the store promoted; remove [replication] primary before restarting", "err", err)
	}
	if r.api != nil {
		r.api.SetStandby("")
	}
	r.log.Warn("promoted: this server is now a primary and takes writes; remove [replication] primary from its configuration",
		"former_primary", r.rs.cfg.Primary, "head", r.st.Head())
	return primaryStatus{Role: "primary", Head: r.st.Head(), Listen: r.rs.cfg.Listen}, nil
}

// operate answers the admin endpoint's replication operations.
func (r *replicator) operate(op string) (any, error) {
	if op == "/promote" {
		return r.promote()
	}
	return r.status(), nil
}

// cmdReplication is `mxcas replication status`.
func cmdReplication(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(stderr, "usage: mxcas replication status [-config FILE]")
		return 2
	}
	return askRunning("replication status", "replication/status", args[1:], stdout, stderr)
}

// cmdPromote is `mxcas promote`.
func cmdPromote(args []string, stdout, stderr io.Writer) int {
	return askRunning("promote", "promote", args, stdout, stderr)
}

// askRunning runs op on the running server of the configuration in args
// and prints its result as one JSON object. Exit 2 when no server runs or
// it refused.
func askRunning(name, op string, args []string, stdout, stderr io.Writer) int {
	cfg, rest, err := loadConfig(name, args, stderr, nil)
	if err != nil {
		return 2
	}
	if len(rest) != 0 {
		fmt.Fprintf(stderr, "usage: mxcas %s [-config FILE]\n", name)
		return 2
	}
	if _, err := os.Stat(filepath.Join(cfg.Server.DataDir, adminFile)); err != nil {
		fmt.Fprintf(stderr, "mxcas %s: no server is running on %s (no %s): start `mxcas serve` first\n", name, cfg.Server.DataDir, adminFile)
		return 2
	}
	var res json.RawMessage
	if err := callAdmin(context.Background(), cfg.Server.DataDir, op, nil, &res); err != nil {
		fmt.Fprintf(stderr, "mxcas %s: %v\n", name, err)
		return refusedStatus(err, errNotStandby)
	}
	var out bytes.Buffer
	json.Indent(&out, res, "", "  ")
	fmt.Fprintln(stdout, out.String())
	return 0
}
