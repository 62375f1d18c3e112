package matrix

import (
	"context"
	"testing"
)

// TestSetRoutes checks that SetRoutes replaces Routes for later lookups:
// an added name is routed (before any cached discovery), a removed one is
// discovered again.
func TestSetRoutes(t *testing.T) {
	r := &Resolver{
		Routes:    map[string]string{"old.example.com": "http://127.0.0.1:9001"},
		LookupSRV: (&fakeSRV{}).lookup,
		// No HTTP client is needed: .well-known of a name with a port is
		// never asked.
	}
	ctx := context.Background()
	resolve := func(name string) string {
		t.Helper()
		d, err := r.Resolve(ctx, name)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", name, err)
		}
		return d.BaseURL
	}
	if got := resolve("new.example.com:8448"); got != "https://new.example.com:8448" {
		t.Fatalf("before SetRoutes: %s", got)
	}
	r.SetRoutes(map[string]string{"new.example.com:8448": "http://127.0.0.1:9002"})
	if got := resolve("new.example.com:8448"); got != "http://127.0.0.1:9002" {
		t.Errorf("added route: got %s, want http://127.0.0.1:9002", got)
	}
	if got, ok := r.route("old.example.com"); ok {
		t.Errorf("removed route still routed to %s", got)
	}
}
