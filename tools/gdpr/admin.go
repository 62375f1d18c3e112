package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/mxcas/mxcas/media"
)

// The running server's local admin endpoint (cmd/mxcas/admin.go): it
// publishes DATA/admin.json ({addr, secret, pid}, mode 0600); a client
// POSTs to http://addr/<op> with "Authorization: Bearer <secret>". The
// export and import operations answer in NDJSON, flushed line by line:
// zero or more {"problem": {...}} lines, then one last line {"result":
// <report>, "error": "...", "refused": "<kind>"} (error and refused only
// when set). A request the server rejects before it starts gets one JSON
// object of the last line's shape, with a 4xx status.

const adminFile = "admin.json"

type adminInfo struct {
	Addr   string `json:"addr"`
	Secret string `json:"secret"`
	PID    int    `json:"pid"`
}

// exportRequest is the body of POST /export.
type exportRequest struct {
	Entity   string `json:"entity"`
	Dest     string `json:"dest"` // absolute
	PartSize int64  `json:"part_size,omitempty"`
}

// importRequest is the body of POST /import.
type importRequest struct {
	Dir          string `json:"dir"` // absolute
	OnlyEntity   string `json:"only_entity,omitempty"`
	Verify       bool   `json:"verify,omitempty"`
	AllowDeleted bool   `json:"allow_deleted,omitempty"`
}

// adminRefusals are the server's kinds of refusal, as the sentinel a local
// run would return.
var adminRefusals = map[string]error{
	"export_dest": media.ErrExportDest,
	"import_dir":  media.ErrNoArchive,
}

// adminSession talks to the server whose admin.json it read.
type adminSession struct {
	info adminInfo
}

// openAdmin reads DATA/admin.json.
func openAdmin(dataDir string) (*adminSession, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, adminFile))
	if err != nil {
		return nil, errors.New("the store is in use by another process, and it offers no admin endpoint (is it an mxcas server of this version?)")
	}
	var s adminSession
	if err := json.Unmarshal(b, &s.info); err != nil || s.info.Addr == "" {
		return nil, fmt.Errorf("read %s: not an admin endpoint's file", filepath.Join(dataDir, adminFile))
	}
	return &s, nil
}

// call asks the server to run op with req, hands each problem line to
// problem (nil: none expected) and decodes the last line's result into
// res. The server's error comes back as an error: its refusals as the
// matching sentinel, a rejected request as a refusedError.
func (s *adminSession) call(ctx context.Context, op string, req any, problem func(media.ArchiveProblem), res any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.info.Addr+"/"+op, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Authorization", "Bearer "+s.info.Secret)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return fmt.Errorf("ask the running server (pid %d) at %s: %w", s.info.PID, s.info.Addr, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var line struct {
			Problem *media.ArchiveProblem `json:"problem"`
			Result  json.RawMessage       `json:"result"`
			Error   string                `json:"error"`
			Refused string                `json:"refused"`
		}
		if err := dec.Decode(&line); err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("its answer ended before the result (did it stop?)")
			}
			return fmt.Errorf("running server: %s: %w", resp.Status, err)
		}
		if line.Problem != nil {
			if problem != nil {
				problem(*line.Problem)
			}
			continue
		}
		if len(line.Result) > 0 && res != nil {
			if err := json.Unmarshal(line.Result, res); err != nil {
				return fmt.Errorf("running server: bad result: %w", err)
			}
		}
		switch {
		case line.Error == "":
			return nil
		case adminRefusals[line.Refused] != nil:
			return fmt.Errorf("running server: %w (%s)", adminRefusals[line.Refused], line.Error)
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			return refusedError{fmt.Errorf("running server: %s: %s", resp.Status, line.Error)}
		}
		return fmt.Errorf("running server: %s", line.Error)
	}
}
