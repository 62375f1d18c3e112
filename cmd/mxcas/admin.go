package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/mxcas/mxcas/httpapi"
	"github.com/mxcas/mxcas/media"
)

// The local admin endpoint lets `mxcas fsck|gc|backup` work while the server
// holds the store (Pebble and the chunk store are single-process). The
// server listens on a loopback port and writes DATA/admin.json (mode 0600:
// only the store's owner can read the secret) with the address and a fresh
// random secret; the commands read it and send the secret as a bearer token.

const adminFile = "admin.json"

// adminConnections caps the admin endpoint's open connections.
const adminConnections = 16

type adminInfo struct {
	Addr   string `json:"addr"`
	Secret string `json:"secret"`
	PID    int    `json:"pid"`
}

// adminServer serves the maintenance operations of st on ln.
type adminServer struct {
	st     *media.Store
	repl   *replicator // replication status and promotion
	secret string
	log    *slog.Logger
}

func (a *adminServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got := []byte(r.Header.Get("Authorization"))
	want := []byte("Bearer " + a.secret)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "bad or missing admin secret"})
		return
	}
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST only"})
		return
	}
	res, ok, err := a.operate(w, r)
	if !ok {
		return
	}
	writeAdminResult(w, res, err)
}

// operate runs the operation r names and returns its result; ok is false
// when it has already written the answer: a refusal, or the streamed answer
// of an operation that reports as it goes (export, import).
func (a *adminServer) operate(w http.ResponseWriter, r *http.Request) (res any, ok bool, err error) {
	ctx := r.Context()
	switch r.URL.Path {
	case "/fsck":
		var fo media.FsckOptions
		// An empty or "null" body (older clients): the default workers.
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&fo); err != nil && !errors.Is(err, io.EOF) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want {\"workers\": int} or no body"})
			return nil, false, nil
		}
		res, err = a.st.FsckWith(ctx, fo)
	case "/gc":
		var req struct {
			Force bool `json:"force"`
		}
		// An empty or "null" body (older clients) means an unforced GC.
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want {\"force\": bool} or no body"})
			return nil, false, nil
		}
		if req.Force {
			a.log.Warn("admin: forced gc requested")
		}
		res, err = a.st.RunGC(ctx, media.GCOptions{Force: req.Force})
	case "/backup":
		var req struct {
			Dest string `json:"dest"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || !filepath.IsAbs(req.Dest) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want {\"dest\": absolute path}"})
			return nil, false, nil
		}
		a.log.Info("admin: backup requested", "dest", req.Dest)
		res, err = a.st.Backup(ctx, req.Dest)
	case "/repair-peer":
		return a.repairPeer(w, r)
	case "/repair":
		var req struct {
			From string `json:"from"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || !filepath.IsAbs(req.From) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want {\"from\": absolute path}"})
			return nil, false, nil
		}
		a.log.Info("admin: repair requested", "from", req.From)
		res, err = a.st.RepairFrom(ctx, req.From)
	case "/replication/status", "/promote":
		res, err = a.repl.operate(r.URL.Path)
	case "/export":
		a.export(w, r)
		return nil, false, nil
	case "/import":
		a.importDir(w, r)
		return nil, false, nil
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown admin operation"})
		return nil, false, nil
	}
	return res, true, err
}

// writeAdminResult writes an operation's result, with its error and, when
// the operation refused to run, the kind of refusal.
func writeAdminResult(w http.ResponseWriter, res any, err error) {
	status, body := adminResult(res, err)
	writeJSON(w, status, body)
}

// adminResult is the status and body of an operation's answer.
func adminResult(res any, err error) (int, map[string]any) {
	status := http.StatusOK
	var body = map[string]any{"result": res}
	if err != nil {
		status = http.StatusInternalServerError
		body["error"] = err.Error()
		for kind, sentinel := range adminRefusals {
			if errors.Is(err, sentinel) {
				status = http.StatusConflict
				body["refused"] = kind
				break
			}
		}
	}
	return status, body
}

// adminRefusals name the errors by which an operation refused to run and
// changed nothing, so callAdmin can give the caller the same sentinel (and
// the command the same exit status) as a local run.
var adminRefusals = map[string]error{
	"gc":          media.ErrGCRefused,
	"backup_dest": media.ErrBackupDest,
	"repair_src":  media.ErrRepairSource,
	"export_dest": media.ErrExportDest,
	"import_dir":  media.ErrNoArchive,
	"promote":     errNotStandby,
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// startAdmin listens on addr, publishes DATA/admin.json and serves until
// ctx ends. The returned stop function shuts it down and removes the file.
func startAdmin(ctx context.Context, addr string, st *media.Store, repl *replicator, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin endpoint: %w", err)
	}
	var sec [32]byte
	rand.Read(sec[:])
	a := &adminServer{st: st, repl: repl, secret: hex.EncodeToString(sec[:]), log: log}
	info, _ := json.Marshal(adminInfo{Addr: ln.Addr().String(), Secret: a.secret, PID: os.Getpid()})
	path := filepath.Join(st.Dir(), adminFile)
	if err := st.WriteDataFile(adminFile, info); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin endpoint: %w", err)
	}
	// Only local processes reach it, and only with the secret do anything;
	// still, a header trickle or a pile of idle connections gets nothing.
	srv := &http.Server{Handler: a, BaseContext: func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	go srv.Serve(httpapi.LimitListener(ln, adminConnections))
	log.Info("admin endpoint listening", "addr", ln.Addr().String(), "file", path)
	return func() {
		// ctx is done by now, so a running fsck, gc or backup is cancelled;
		// wait for its handler before the store is closed under it.
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Error("admin endpoint: shutdown", "err", err)
		}
		os.Remove(path)
	}, nil
}

// errNoAdmin means the store is held by a process that published no admin
// endpoint.
var errNoAdmin = errors.New("the store is in use by another process, and it offers no admin endpoint (is it an mxcas server of this version?)")

// callAdmin asks the server holding dataDir to run op and decodes its result
// into res. The server's own error comes back as an error.
func callAdmin(ctx context.Context, dataDir, op string, req, res any) error {
	b, err := os.ReadFile(filepath.Join(dataDir, adminFile))
	if err != nil {
		return errNoAdmin
	}
	var info adminInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return fmt.Errorf("read %s: %w", adminFile, err)
	}
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+info.Addr+"/"+op, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Authorization", "Bearer "+info.Secret)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return fmt.Errorf("ask the running server (pid %d) at %s: %w", info.PID, info.Addr, err)
	}
	defer resp.Body.Close()
	var out struct {
		Result  json.RawMessage `json:"result"`
		Error   string          `json:"error"`
		Refused string          `json:"refused"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("running server: %s: bad answer: %w", resp.Status, err)
	}
	if len(out.Result) > 0 && res != nil {
		if err := json.Unmarshal(out.Result, res); err != nil {
			return fmt.Errorf("running server: bad result: %w", err)
		}
	}
	if sentinel, ok := adminRefusals[out.Refused]; ok && out.Error != "" {
		return fmt.Errorf("running server: %w (%s)", sentinel, out.Error)
	}
	if out.Error != "" {
		return fmt.Errorf("running server: %s", out.Error)
	}
	return nil
}
