package httpapi

import (
	"net/http/httptest"
	"testing"
)

func TestHomeserverByHost(t *testing.T) {
	a := &API{}
	a.SetHomeservers([]Homeserver{
		{Name: "example.org"}, {Name: "other.test:8448"}, {Name: "[2001:db8::1]"}, {Name: "media.other.test"},
	})
	cases := []struct {
		host, forwarded string
		trust           bool
		want            string // "" = unknown
	}{
		{"example.org", "", false, "example.org"},
		{"example.org:8008", "", false, "example.org"},
		{"EXAMPLE.org", "", false, "example.org"},
		{"other.test:8448", "", false, "other.test:8448"},
		{"[2001:db8::1]:443", "", false, "[2001:db8::1]"},
		{"[2001:db8::1]", "", false, "[2001:db8::1]"},
		{"unknown.test", "", false, ""},
		{"example.org", "media.other.test", false, "example.org"},   // not trusted: ignored
		{"127.0.0.1", "media.other.test", true, "media.other.test"}, // trusted
		{"127.0.0.1", "media.other.test:443, proxy", true, "media.other.test"},
		{"127.0.0.1", "", true, ""},
	}
	for _, c := range cases {
		a.opts.TrustForwarded = c.trust
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = c.host
		if c.forwarded != "" {
			r.Header.Set("X-Forwarded-Host", c.forwarded)
		}
		hs, err := a.homeserver(r)
		got := ""
		if err == nil {
			got = hs.Name
		}
		if got != c.want {
			t.Errorf("Host %q, X-Forwarded-Host %q (trusted %v) = %q (%v), want %q", c.host, c.forwarded, c.trust, got, err, c.want)
		}
	}
}
