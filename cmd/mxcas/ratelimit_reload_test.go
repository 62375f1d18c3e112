package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReloadRateLimits runs `mxcas serve` with an upload limit of one, then
// lifts it in the file and sends SIGHUP: the reload names the key as
// changed live, and the next uploads pass.
func TestReloadRateLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), processBound)
	defer cancel()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mxcas.toml")
	write := func(rate string) {
		t.Helper()
		text := reloadConfig(filepath.Join(dir, "data"), `"tok" = "@u:hs.test"`, 1000) +
			"\n[ratelimits.upload]\nper_user = { rate = " + rate + ", burst = 1 }\n"
		if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("0.01")
	s := startServer(t, ctx, cfgPath)
	upload := func() int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.addr+"/_matrix/media/v3/upload", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "hs.test"
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if a, b := upload(), upload(); a != 200 || b != 429 {
		t.Fatalf("uploads before the reload: %d, %d; want 200, 429", a, b)
	}
	write("0")
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, s, "config reloaded")
	if log := s.log.String(); !strings.Contains(log, "ratelimits.upload.per_user.rate") || strings.Contains(log, "need a restart") {
		t.Errorf("the reload does not name ratelimits.upload.per_user.rate as changed live:\n%s", log)
	}
	if a, b := upload(), upload(); a != 200 || b != 200 {
		t.Errorf("uploads after the reload: %d, %d; want 200, 200", a, b)
	}
	if code := s.stop(t); code != 0 {
		t.Errorf("exit status %d:\n%s", code, s.log)
	}
}
