package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"sync"

	"github.com/mxcas/mxcas/media"
)

// The admin endpoint's archive operations (tools/gdpr asks them while the
// server holds the store). They run long and report per media, so their
// answer is NDJSON, each line flushed as it is written: zero or more
// {"problem": {"mxc"|"archive", "kind", "reason"}}, then exactly one
// {"result": <report>, "error": "...", "refused": "<kind>"} (error and
// refused only when set). The server reads and writes the files itself,
// with the same code as the tool (media.ExportToDir, media.ImportDir).

// exportRequest is the body of POST /export.
type exportRequest struct {
	Entity   string `json:"entity"`
	Dest     string `json:"dest"` // absolute
	PartSize int64  `json:"part_size"`
}

// importRequest is the body of POST /import.
type importRequest struct {
	Dir          string `json:"dir"` // absolute
	OnlyEntity   string `json:"only_entity"`
	Verify       bool   `json:"verify"`
	AllowDeleted bool   `json:"allow_deleted"`
}

func (a *adminServer) export(w http.ResponseWriter, r *http.Request) {
	var req exportRequest
	err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req)
	ent, perr := media.ParseEntity(req.Entity)
	if err != nil || perr != nil || !filepath.IsAbs(req.Dest) || req.PartSize < 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"entity": user ID or server name, "dest": absolute path, "part_size": bytes}`})
		return
	}
	a.log.Info("admin: export requested", "entity", ent.String(), "dest", req.Dest)
	rep, err := a.st.ExportToDir(r.Context(), req.Dest, media.ExportOptions{Entity: ent, PartSize: req.PartSize})
	if err != nil {
		a.log.Error("admin: export failed", "entity", ent.String(), "dest", req.Dest, "err", err)
	} else {
		a.log.Info("admin: export done", "entity", ent.String(), "media", rep.Media, "bytes", rep.Bytes, "parts", len(rep.Parts))
	}
	(&adminStream{w: w}).result(rep, err)
}

func (a *adminServer) importDir(w http.ResponseWriter, r *http.Request) {
	var req importRequest
	err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req)
	opts := media.ArchiveImportOptions{Verify: req.Verify, AllowDeleted: req.AllowDeleted}
	if err == nil && req.OnlyEntity != "" {
		var ent media.Entity
		ent, err = media.ParseEntity(req.OnlyEntity)
		opts.OnlyEntity = &ent
	}
	if err != nil || !filepath.IsAbs(req.Dir) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"dir": absolute path, "only_entity": user ID or server name, "verify": bool, "allow_deleted": bool}`})
		return
	}
	a.log.Info("admin: import requested", "dir", req.Dir, "only_entity", req.OnlyEntity, "verify", req.Verify, "allow_deleted", req.AllowDeleted)
	out := &adminStream{w: w}
	opts.Problem = out.problem
	rep, err := a.st.ImportDir(r.Context(), req.Dir, opts)
	if err != nil {
		a.log.Error("admin: import failed", "dir", req.Dir, "err", err)
	} else {
		a.log.Info("admin: import done", "dir", req.Dir, "archives", rep.Archives, "imported", rep.Imported,
			"present", rep.Present, "refused", rep.Refused, "failed", rep.Failed, "missing", rep.Missing)
	}
	out.result(rep, err)
}

// adminStream writes an NDJSON answer. The status goes with the first
// line: a result with nothing before it gets adminResult's status (409 for
// a refusal), as a one-line answer; once a problem was sent it is 200.
type adminStream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	started bool
}

// problem sends one problem line; safe for concurrent use.
func (s *adminStream) problem(p media.ArchiveProblem) {
	s.line(http.StatusOK, map[string]any{"problem": p})
}

// result sends the last line.
func (s *adminStream) result(res any, err error) {
	s.line(adminResult(res, err))
}

func (s *adminStream) line(status int, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", "application/x-ndjson")
		s.w.WriteHeader(status)
	}
	json.NewEncoder(s.w).Encode(v)
	http.NewResponseController(s.w).Flush()
}
