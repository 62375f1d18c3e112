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
	testReloadLimit(t, func(rate string) string {
		return "\n[ratelimits.upload]\nper_user = { rate = " + rate + ", burst = 1 }\n"
	}, "0.01", "0", "ratelimits.upload.per_user.rate", [2]int{200, 429}, [2]int{200, 200})
}

// TestReloadQuotas runs `mxcas serve` with max_files = 1, then raises it
// to 2 in the file and sends SIGHUP: the reload names quotas as changed
// live, and one more upload passes.
func TestReloadQuotas(t *testing.T) {
	testReloadLimit(t, func(maxFiles string) string {
		return "\n[[quotas]]\nusers = \"@u:*\"\nmax_files = " + maxFiles + "\n"
	}, "1", "2", "quotas", [2]int{200, 403}, [2]int{200, 403})
}

// testReloadLimit runs `mxcas serve` with the config section(first), sends
// two uploads (want statuses before), rewrites the file with
// section(second) and sends SIGHUP: the reload must name key as changed
// live, need no restart, and the next two uploads answer after.
func testReloadLimit(t *testing.T, section func(string) string, first, second, key string, before, after [2]int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processBound)
	defer cancel()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mxcas.toml")
	write := func(v string) {
		t.Helper()
		text := reloadConfig(filepath.Join(dir, "data"), `"tok" = "@u:hs.test"`, 1000) + section(v)
		if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(first)
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
	if got := [2]int{upload(), upload()}; got != before {
		t.Fatalf("uploads before the reload: %v; want %v", got, before)
	}
	write(second)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, s, "config reloaded")
	if log := s.log.String(); !strings.Contains(log, key) || strings.Contains(log, "need a restart") {
		t.Errorf("the reload does not name %s as changed live:\n%s", key, log)
	}
	if got := [2]int{upload(), upload()}; got != after {
		t.Errorf("uploads after the reload: %v; want %v", got, after)
	}
	if code := s.stop(t); code != 0 {
		t.Errorf("exit status %d:\n%s", code, s.log)
	}
}
