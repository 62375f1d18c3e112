package httpapi

import (
	"maps"
	"strconv"
	"testing"
	"time"
)

// Every admin action writes one "admin action" log line with the admin,
// the action, its target (path parameters and query) and its result: ok
// with the handler's figures, or error with the status and errcode the
// admin got.
func TestAdminAuditLog(t *testing.T) {
	at := newAdminTest(t)
	at.upload(t, []byte("audited"))
	at.store(t, "hs.test", "old", 10)
	before := strconv.FormatInt(at.clk.Now().Add(time.Millisecond).UnixMilli(), 10)

	wantOK(t, at.hs(t, "POST", "/_synapse/admin/v1/media/delete?before_ts="+before+"&size_gt=8", "admin"), `{"deleted_media":["old"],"total":1}`)
	wantOK(t, at.hs(t, "POST", "/_synapse/admin/v1/user/@alice:hs.test/media/quarantine", "admin"), `{"num_quarantined":1}`)
	wantMatrixError(t, at.hs(t, "POST", "/_synapse/admin/v1/media/quarantine/hs.test/unknown", "admin"), 404, "M_NOT_FOUND", "")
	wantMatrixError(t, at.call(t, "DELETE", "other.test", "/_synapse/admin/v1/media/other.test/nope", "oadmin", nil, false), 404, "M_NOT_FOUND", "")
	at.srv.Close() // waits for the handlers: every line is written

	ours := map[string]string{"admin": "@admin:hs.test", "host": "hs.test"}
	theirs := map[string]string{"admin": "@oadmin:other.test", "host": "other.test"}
	want := []map[string]string{
		with(ours, "action", "delete_media_by_date_and_size", "method", "POST", "target", "before_ts="+before+"&size_gt=8",
			"result", "ok", "total", "1"),
		with(ours, "action", "quarantine_user_media", "method", "POST", "target", "user_id=@alice:hs.test",
			"result", "ok", "num_quarantined", "1"),
		with(ours, "action", "quarantine_media", "method", "POST", "target", "server=hs.test id=unknown",
			"result", "error", "status", "404", "errcode", "M_NOT_FOUND"),
		with(theirs, "action", "delete_media", "method", "DELETE", "target", "server=other.test id=nope",
			"result", "error", "status", "404", "errcode", "M_NOT_FOUND"),
	}
	got := at.log.lines("admin action")
	if len(got) != len(want) {
		t.Fatalf("%d admin action lines, want one for each of the %d actions: %v", len(got), len(want), got)
	}
	for i, g := range got {
		if w := want[i]; w["result"] == "error" {
			if g["err"] == "" {
				t.Errorf("line %d: no err in %v", i, g)
			}
			delete(g, "err")
		}
		if !maps.Equal(g, want[i]) {
			t.Errorf("line %d:\n %v, want\n %v", i, g, want[i])
		}
	}
}

// with is m and the key-value pairs kv.
func with(m map[string]string, kv ...string) map[string]string {
	out := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}
