package config

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// quotaRules are validateRules' rows for [[quotas]], one per rule and edge.
var quotaRules = []validateRule{
	{"quotas valid", withQuotas(Quota{Users: "@admin:example.org"}, Quota{Users: "*", MaxBytes: 1, MaxFiles: 1, MaxPending: 1}), ""},
	{"quotas.users empty", withQuotas(Quota{Users: ""}), `quotas.users: [[quotas]] 1: want a user ID glob such as "@*:example.org", got ""`},
	{"quotas.users not a user ID", withQuotas(Quota{Users: "@a:b"}, Quota{Users: "alice"}), `quotas.users: [[quotas]] 2: want a user ID glob such as "@*:example.org", got "alice"`},
	{"quotas.users with a space", withQuotas(Quota{Users: "@a :b"}), `quotas.users: [[quotas]] 1: want a user ID glob such as "@*:example.org", got "@a :b"`},
	{"quotas.max_bytes negative", withQuotas(Quota{Users: "*", MaxBytes: -1}), `quotas.max_bytes: [[quotas]] 1 (*): must not be negative (0: no limit)`},
	{"quotas.max_files negative", withQuotas(Quota{Users: "*", MaxFiles: -1}), `quotas.max_files: [[quotas]] 1 (*): must not be negative (0: no limit)`},
	{"quotas.max_pending negative", withQuotas(Quota{Users: "*", MaxPending: -1}), `quotas.max_pending: [[quotas]] 1 (*): must not be negative (0: no limit)`},
}

func init() { validateRules = append(validateRules, quotaRules...) }

func withQuotas(qs ...Quota) func(*Config) {
	return func(c *Config) { c.Quotas = qs }
}

// [[quotas]] tables parse in order with their limits, absent limits are 0,
// and the default has none.
func TestQuotasParse(t *testing.T) {
	if q := Default().Quotas; q != nil {
		t.Errorf("default quotas = %+v, want none", q)
	}
	c, err := Parse(`
[[quotas]]
users = "@admin:example.org"
[[quotas]]
users = "@bot-*:*"
max_files = 10
max_pending = 3
[[quotas]]
users = "@*:example.org"
max_bytes = 1048576
`, "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Quota{
		{Users: "@admin:example.org"},
		{Users: "@bot-*:*", MaxFiles: 10, MaxPending: 3},
		{Users: "@*:example.org", MaxBytes: 1 << 20},
	}
	if !reflect.DeepEqual(c.Quotas, want) {
		t.Errorf("quotas = %+v, want %+v", c.Quotas, want)
	}
}

// A bad [[quotas]] table is refused naming its key and line; an unknown
// key in one too.
func TestQuotasParseErrors(t *testing.T) {
	for text, want := range map[string]string{
		"[[quotas]]\nusers = \"@*:x\"\n[[quotas]]\nusers = \"bob\"\n": "t.toml:2: quotas.users: [[quotas]] 2: ",
		"[[quotas]]\nusers = \"*\"\nmax_bytes = -5\n":                 "t.toml:3: quotas.max_bytes: [[quotas]] 1 (*): must not be negative",
		"[[quotas]]\nusers = \"*\"\nmax_size = 5\n":                   `t.toml:3: unknown key "quotas.max_size"`,
	} {
		_, err := Parse(text, "t.toml")
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", text, err, want)
		}
	}
}

// commentedExample reports whether the example file shows key as a
// commented-out example: a "# [[table]]" line followed, before the next
// table, by "# name =". Keys of tables whose default is none ([[quotas]])
// can only be shown this way: set, they would differ from Default().
func commentedExample(text, key string) bool {
	table, name, ok := strings.Cut(key, ".")
	header := regexp.MustCompile(`^#\s*\[\[` + regexp.QuoteMeta(table) + `\]\]\s*$`)
	if !ok {
		for _, line := range strings.Split(text, "\n") {
			if header.MatchString(line) {
				return true
			}
		}
		return false
	}
	assign := regexp.MustCompile(`^#\s*` + regexp.QuoteMeta(name) + `\s*=`)
	in := false
	for _, line := range strings.Split(text, "\n") {
		switch {
		case header.MatchString(line):
			in = true
		case strings.HasPrefix(strings.TrimSpace(line), "["):
			in = false
		case in && assign.MatchString(line):
			return true
		}
	}
	return false
}
