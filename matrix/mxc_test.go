package matrix

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseMXC(t *testing.T) {
	good := []struct{ in, server, id string }{
		{"mxc://example.org/abcDEF123_-", "example.org", "abcDEF123_-"},
		{"mxc://example.org:8448/x", "example.org:8448", "x"},
		{"mxc://1.2.3.4/x", "1.2.3.4", "x"},
		{"mxc://1.2.3.4:80/x", "1.2.3.4:80", "x"},
		{"mxc://[::1]/x", "[::1]", "x"},
		{"mxc://[2001:db8::1]:8448/x", "[2001:db8::1]:8448", "x"},
		{"mxc://localhost/x", "localhost", "x"},
		{"mxc://my-server.example.org/x", "my-server.example.org", "x"},
		{"mxc://" + strings.Repeat("a", 63) + ".org/x", strings.Repeat("a", 63) + ".org", "x"},
	}
	for _, c := range good {
		m, err := ParseMXC(c.in)
		if err != nil {
			t.Errorf("ParseMXC(%q): %v", c.in, err)
			continue
		}
		if m.Server() != c.server || m.MediaID() != c.id || m.String() != c.in {
			t.Errorf("ParseMXC(%q) = %+v (%s)", c.in, m, m)
		}
	}
	bad := []string{
		"", "mxc://", "mxc:///x", "mxc://example.org", "mxc://example.org/", "http://example.org/x",
		"mxc://example.org/../etc/passwd", "mxc://example.org/a/b", "mxc://example.org/a%2Fb",
		"mxc://exa mple.org/x", "mxc://example.org:/x", "mxc://example.org:0/x", "mxc://example.org:65536/x",
		"mxc://example.org:08/x", "mxc://example.org:+8/x", "mxc://[::1/x", "mxc://[1.2.3.4]/x", "mxc://[fe80::1%eth0]/x",
		"mxc://example.org/" + strings.Repeat("a", 256), "mxc://ex_ample.org/x", "mxc://example.org/ä",
		"mxc://example.org/a\x00", "mxc://example.org/.", "mxc://exa/mple.org/x",
		// Empty DNS labels: a server name must never name a parent directory.
		"mxc://../x", "mxc://./x", "mxc://..:8448/x", "mxc://a..b/x", "mxc://.example.org/x",
		"mxc://example.org./x", "mxc://example..org:8448/x", "mxc://" + strings.Repeat("a", 64) + ".org/x",
	}
	for _, in := range bad {
		if m, err := ParseMXC(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseMXC(%q) = %+v, %v; want ErrInvalid", in, m, err)
		}
	}
}

func TestNewMediaID(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := NewMediaID()
		if err := ValidateMediaID(id); err != nil || len(id) != 24 {
			t.Fatalf("NewMediaID() = %q: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("NewMediaID repeated %q", id)
		}
		seen[id] = true
	}
}

// FuzzParseMXC: whatever the input, a parsed MXC formats back to the input,
// and its parts pass validation and hold no path separator or dot segment.
func FuzzParseMXC(f *testing.F) {
	for _, s := range []string{"mxc://example.org/abc", "mxc://[::1]:8448/a_b-c", "mxc://1.2.3.4/x", "mxc://a/../b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMXC(s)
		if err != nil {
			return
		}
		if m.String() != s {
			t.Fatalf("String() = %q, input %q", m.String(), s)
		}
		if strings.ContainsAny(m.MediaID(), "/\\.%\x00") || strings.ContainsAny(m.Server(), "/\\%\x00 ") {
			t.Fatalf("unsafe parts accepted: %+v", m)
		}
		if _, err := NewMXC(m.Server(), m.MediaID()); err != nil {
			t.Fatalf("NewMXC rejects what ParseMXC accepted: %v", err)
		}
		checkServerName(t, m.Server())
	})
}

func TestValidateServerName(t *testing.T) {
	good := []string{
		"example.org", "example.org:8448", "localhost", "1.2.3.4", "1.2.3.4:80", "[::1]", "[2001:db8::1]:8448",
		"a", "a-b.c-d", "xn--bcher-kva.example", strings.Repeat("a", 63), "A.B.C:65535",
	}
	for _, s := range good {
		if err := ValidateServerName(s); err != nil {
			t.Errorf("ValidateServerName(%q) = %v, want nil", s, err)
		}
	}
	bad := []string{
		"", ".", "..", "...", "..:8448", "../etc", "a..b", ".a", "a.", "a.:80", "example.org.", "a/b", `a\b`,
		"%2e%2e", "ex_ample.org", "exa mple", "[::1", "[1.2.3.4]", "[fe80::1%eth0]", "a:", "a:0", "a:65536",
		"a:08", strings.Repeat("a", 64), strings.Repeat("a.", 127) + "ab", "\x00", "a\x00b",
	}
	for _, s := range bad {
		if err := ValidateServerName(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateServerName(%q) = %v, want ErrInvalid", s, err)
		}
	}
}

// FuzzValidateServerName: an accepted server name is host[:port] with a
// bracketed IPv6 host or dot-separated non-empty labels of [A-Za-z0-9-], so
// it can never be a path, a dot segment or carry a separator.
func FuzzValidateServerName(f *testing.F) {
	for _, s := range []string{"example.org", "example.org:8448", "[::1]:80", "1.2.3.4", "..", "a..b", ".", "a.", "%2e%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateServerName(s) != nil {
			return
		}
		checkServerName(t, s)
	})
}

// checkServerName fails t unless s, an accepted server name, has the shape
// the grammar allows.
func checkServerName(t *testing.T, s string) {
	t.Helper()
	if strings.ContainsAny(s, "/\\%\x00 _") {
		t.Fatalf("server name %q holds a separator", s)
	}
	host, _ := splitServerName(s)
	if strings.HasPrefix(host, "[") {
		return
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 {
			t.Fatalf("server name %q has an empty or overlong label", s)
		}
	}
}

func ExampleParseMXC() {
	m, err := ParseMXC("mxc://example.org/SEsfnsuifSDFSSEF")
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Server(), m.MediaID())
	// Output: example.org SEsfnsuifSDFSSEF
}

func TestMXCZero(t *testing.T) {
	var zero MXC
	if !zero.IsZero() || zero.Server() != "" || zero.MediaID() != "" {
		t.Errorf("zero MXC = %+v, IsZero %v", zero, zero.IsZero())
	}
	m, err := NewMXC("example.org", "x")
	if err != nil || m.IsZero() || m == zero {
		t.Errorf("NewMXC(example.org, x) = %+v, %v; want a non-zero MXC", m, err)
	}
	if m, err := NewMXC("..", "x"); !errors.Is(err, ErrInvalid) || !m.IsZero() {
		t.Errorf("NewMXC(.., x) = %+v, %v; want the zero MXC and ErrInvalid", m, err)
	}
}
