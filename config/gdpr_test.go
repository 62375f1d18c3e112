package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// [gdpr] is off with a 24h TTL and 100 MiB parts by default; its keys are
// read from the file; a short TTL, a small part size and an unknown key are
// refused with their key and line.
func TestGDPRTable(t *testing.T) {
	if g, want := Default().GDPR, (GDPR{ExportTTL: Duration{24 * time.Hour}, PartSize: 100 << 20}); g != want {
		t.Errorf("default [gdpr] = %+v, want %+v", g, want)
	}
	c, err := Parse("[gdpr]\nself_service = true\nexport_ttl = \"2h\"\npart_size = 2097152\n", "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := (GDPR{SelfService: true, ExportTTL: Duration{2 * time.Hour}, PartSize: 2 << 20}); c.GDPR != want {
		t.Errorf("[gdpr] = %+v, want %+v", c.GDPR, want)
	}
	for _, tc := range []struct{ text, want string }{
		{"[gdpr]\nexport_ttl = \"59s\"\n", "t.toml:2: gdpr.export_ttl: must be at least 1m"},
		{"[gdpr]\nself_service = false\npart_size = 1000\n", "t.toml:3: gdpr.part_size: must be at least 1048576"},
		{"[gdpr]\nexport_ttl = \"soon\"\n", "gdpr.export_ttl"},
		{"[gdpr]\nselfservice = true\n", `t.toml:2: unknown key "gdpr.selfservice"`},
	} {
		_, err := Parse(tc.text, "t.toml")
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid containing %q", tc.text, err, tc.want)
		}
	}
}
