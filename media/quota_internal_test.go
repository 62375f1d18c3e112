package media

import "testing"

// matchGlob: "*" is any run (":" and "/" too), "?" one character, the
// rest literal and case-sensitive.
func TestMatchGlob(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"@*:example.org", "@alice:example.org", true},
		{"@*:example.org", "@alice:example.org.evil", false},
		{"@*:example.org", "@alice:Example.org", false},
		{"@bot-*:*", "@bot-x:other.test", true},
		{"@bot-*:*", "@bot:other.test", false},
		{"*", "", true},
		{"*", "@a/b:c", true},
		{"@?:s", "@x:s", true},
		{"@?:s", "@xy:s", false},
		{"@a*b*c:s", "@aXbYbZc:s", true},
		{"@a*b*c:s", "@aXbYbZ:s", false},
		{"@é*:s", "@éa:s", true},
		{"@alice:s", "@alice:s", true},
		{"@alice:s", "@alice:s2", false},
	} {
		if got := matchGlob(c.pattern, c.s); got != c.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}
