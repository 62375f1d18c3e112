package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Server.Listen != "127.0.0.1:8001" || c.Server.DataDir != "data" || !c.Server.FreezeUnauthenticated {
		t.Errorf("default = %+v", c.Server)
	}
}

func TestParseOverridesDefaults(t *testing.T) {
	c, err := Parse(`
[server]
listen = "127.0.0.1:9000"
max_upload_bytes = 1024

[storage]
gc_grace = "2h"
`, "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Listen != "127.0.0.1:9000" || c.Server.MaxUploadBytes != 1024 || c.Storage.GCGrace.Duration != 2*time.Hour {
		t.Errorf("got %+v", c)
	}
	if c.Server.DataDir != "data" {
		t.Errorf("unset key lost its default: data_dir = %q", c.Server.DataDir)
	}
}

func TestParseErrorsNameKeyAndLine(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string
	}{
		{"unknown key", "[server]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n", []string{"bogus", "t.toml:3"}},
		{"unknown table", "[serverr]\nlisten = \"x\"\n", []string{"serverr", "t.toml:1"}},
		{"bad value", "[server]\n\nmax_upload_bytes = -1\n", []string{"server.max_upload_bytes", "t.toml:3", "positive"}},
		{"wrong type", "[server]\nmax_upload_bytes = \"big\"\n", []string{"line 2", "server.max_upload_bytes"}},
		{"bad listen", "[server]\nlisten = \"nope\"\n", []string{"server.listen", "t.toml:2"}},
		{"admin not loopback", "[server]\nadmin_listen = \"0.0.0.0:1\"\n", []string{"server.admin_listen", "loopback"}},
		{"bad duration", "[storage]\ngc_grace = \"soon\"\n", []string{"t.toml:2", "gc_grace"}},
		{"short grace", "[storage]\ngc_grace = \"1s\"\n", []string{"storage.gc_grace", "t.toml:2"}},
		{"syntax", "[server\n", []string{"t.toml:"}},
	}
	for _, c := range cases {
		_, err := Parse(c.text, "t.toml")
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not name %q", c.name, err, w)
			}
		}
	}
}

func TestLoadResolvesDataDirNextToFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mxcas.toml")
	os.WriteFile(path, []byte("[server]\ndata_dir = \"store\"\n"), 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "store"); c.Server.DataDir != want {
		t.Errorf("data_dir = %q, want %q", c.Server.DataDir, want)
	}
	if c.Source != path {
		t.Errorf("Source = %q", c.Source)
	}
}

// TestExampleFileParses checks that config.toml.example sets every key and
// that what it sets equals Default() key by key. Its commented-out lines (a
// static_tokens entry, a route) are examples, not values, so they are not
// compared; its empty lists and tables ("admins = []") show keys whose
// default is unset and compare equal to them.
func TestExampleFileParses(t *testing.T) {
	name := filepath.Join("..", "config.toml.example")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := Parse(string(b), name) // Parse, not Load: data_dir stays as written
	if err != nil {
		t.Fatal(err)
	}
	ex.Source = ""
	d := Default()
	d.Source = ""
	for _, diff := range Diff(d, ex) {
		t.Errorf("config.toml.example differs from Default(): %s", diff)
	}

	var raw Config
	md, err := toml.Decode(string(b), &raw)
	if err != nil {
		t.Fatal(err)
	}
	set := make(map[string]bool)
	for _, k := range md.Keys() {
		set[k.String()] = true
	}
	for _, key := range configKeys() {
		if !set[key] && !commentedExample(string(b), key) {
			t.Errorf("config.toml.example does not show %s", key)
		}
	}
}

// TestDiffKeysFindsEachField checks that the example comparison is not
// blind: a change in a nested table, a list element or a table entry is
// reported by its key.
func TestDiffKeysFindsEachField(t *testing.T) {
	for want, mutate := range map[string]func(*Config){
		"server.transfer_window":      func(c *Config) { c.Server.TransferWindow = Duration{time.Second} },
		"thumbnails.sizes[3].method":  func(c *Config) { c.Thumbnails.Sizes[3].Method = "crop" },
		"homeserver[0].admins":        func(c *Config) { c.Homeservers[0].Admins = []string{"@a:b"} },
		"homeserver[0].static_tokens": func(c *Config) { c.Homeservers[0].StaticTokens = map[string]string{"t": "@a:b"} },
		"thumbnails.sizes":            func(c *Config) { c.Thumbnails.Sizes = c.Thumbnails.Sizes[:4] },
		"federation.routes":           func(c *Config) { c.Federation.Routes = map[string]string{"a": "http://a"} },
	} {
		c, d := Default(), Default()
		mutate(&c)
		diffs := Diff(d, c)
		if len(diffs) != 1 || diffs[0].Key != want {
			t.Errorf("%s changed: diffKeys = %q, want one difference at %s", want, diffs, want)
		}
	}
	c, d := Default(), Default()
	c.Homeservers[0].Admins, c.Federation.AllowedNetworks, c.Federation.Routes = []string{}, []string{}, map[string]string{}
	if diffs := Diff(d, c); len(diffs) != 0 {
		t.Errorf("empty lists and tables differ from unset ones: %q", diffs)
	}
}

func TestHomeserversAndRoutes(t *testing.T) {
	c, err := Parse(`
[server]
listen = "127.0.0.1:8001"

[[homeserver]]
name = "example.org"
client_api = "http://127.0.0.1:8008"
signing_key = "example.org.signing.key"
admins = ["@admin:example.org"]

[[homeserver]]
name = "other.example:8448"
client_api = "https://matrix.other.example"

[federation.routes]
"far.example" = "http://127.0.0.1:8002"
`, "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Homeservers) != 2 || c.Homeservers[0].Name != "example.org" || c.Homeservers[0].Admins[0] != "@admin:example.org" ||
		c.Homeservers[1].Name != "other.example:8448" {
		t.Errorf("homeservers = %+v", c.Homeservers)
	}
	if got := c.Federation.Routes["far.example"]; got != "http://127.0.0.1:8002" {
		t.Errorf("route = %q", got)
	}
	d, err := Parse("[server]\nlisten = \"127.0.0.1:1\"\n", "t.toml")
	if err != nil || len(d.Homeservers) != 1 || d.Homeservers[0].Name != "localhost" {
		t.Errorf("a file without [[homeserver]] keeps the default localhost: %+v, %v", d.Homeservers, err)
	}
	for name, text := range map[string]string{
		"bad name":       "[[homeserver]]\nname = \"exa mple\"\nclient_api = \"http://x\"\n",
		"bad port":       "[[homeserver]]\nname = \"example.org:0\"\nclient_api = \"http://x\"\n",
		"twice":          "[[homeserver]]\nname = \"a.org\"\nclient_api = \"http://x\"\n[[homeserver]]\nname = \"A.org\"\nclient_api = \"http://x\"\n",
		"bad client_api": "[[homeserver]]\nname = \"a.org\"\nclient_api = \"ftp://x\"\n",
		"bad admin":      "[[homeserver]]\nname = \"a.org\"\nclient_api = \"http://x\"\nadmins = [\"admin\"]\n",
		"bad route":      "[federation.routes]\n\"a.org\" = \"nope\"\n",
		"bad network":    "[federation]\nallowed_networks = [\"10.0.0.0/8\", \"localhost\"]\n",
		"bare address":   "[federation]\nallowed_networks = [\"10.0.0.1\"]\n",
		"bad bits":       "[federation]\nallowed_networks = [\"10.0.0.0/33\"]\n",
		"unknown key":    "[[homeserver]]\nname = \"a.org\"\nclient_api = \"http://x\"\ncolour = 1\n",
	} {
		if _, err := Parse(text, "t.toml"); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	_, err = Parse("[[homeserver]]\nname = \"a.org\"\nclient_api = \"ftp://x\"\n", "t.toml")
	if err == nil || !strings.Contains(err.Error(), "t.toml:3") || !strings.Contains(err.Error(), "homeserver.client_api") {
		t.Errorf("bad client_api error %v does not name the key and line 3", err)
	}
}

func TestSlowPeerLimits(t *testing.T) {
	d := Default()
	if d.Server.MinTransferRate != 1024 || d.Server.TransferWindow.Duration != time.Minute || d.Server.MaxConnections != 4096 {
		t.Errorf("defaults: min_transfer_rate %d, transfer_window %s, max_connections %d; want 1024, 1m, 4096",
			d.Server.MinTransferRate, d.Server.TransferWindow, d.Server.MaxConnections)
	}
	ex, err := Load(filepath.Join("..", "config.toml.example"))
	if err != nil {
		t.Fatal(err)
	}
	if ex.Server.MinTransferRate != d.Server.MinTransferRate || ex.Server.TransferWindow != d.Server.TransferWindow ||
		ex.Server.MaxConnections != d.Server.MaxConnections {
		t.Errorf("config.toml.example does not show the slow-peer defaults: %+v", ex.Server)
	}

	c, err := Parse("[server]\nmin_transfer_rate = 0\ntransfer_window = \"5s\"\nmax_connections = 3\n", "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.MinTransferRate != 0 || c.Server.TransferWindow.Duration != 5*time.Second || c.Server.MaxConnections != 3 {
		t.Errorf("got %+v", c.Server)
	}

	for _, bad := range []struct{ text, key string }{
		{"min_transfer_rate = -1", "server.min_transfer_rate"},
		{"transfer_window = \"500ms\"", "server.transfer_window"},
		{"transfer_window = \"2h\"", "server.transfer_window"},
		{"max_connections = 0", "server.max_connections"},
		{"max_connections = -5", "server.max_connections"},
	} {
		_, err := Parse("[server]\n"+bad.text+"\n", "t.toml")
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad.key) || !strings.Contains(err.Error(), "t.toml:2") {
			t.Errorf("%s: got %v, want ErrInvalid naming %s at t.toml:2", bad.text, err, bad.key)
		}
	}
}

func TestAllowedNetworks(t *testing.T) {
	if d := Default(); len(d.Federation.AllowedNetworks) != 0 || d.Federation.AllowedPrefixes() != nil {
		t.Errorf("default allowed_networks = %q, want none", d.Federation.AllowedNetworks)
	}
	c, err := Parse("[federation]\nallowed_networks = [\"127.0.0.0/8\", \"10.1.2.3/16\", \"fd00::/8\"]\n", "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(c.Federation.AllowedPrefixes())
	if want := "[127.0.0.0/8 10.1.0.0/16 fd00::/8]"; got != want {
		t.Errorf("AllowedPrefixes = %s, want %s", got, want)
	}
	_, err = Parse("[federation]\n\nallowed_networks = [\"10.0.0.0/8\", \"nope\"]\n", "t.toml")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "federation.allowed_networks") || !strings.Contains(err.Error(), "t.toml:3") || !strings.Contains(err.Error(), "nope") {
		t.Errorf("bad allowed_networks: %v, want it to name the key, line 3 and the value", err)
	}
}

func TestStorageSpaceKeys(t *testing.T) {
	d := Default()
	if d.Storage.MinFreeBytes != 0 || d.Storage.BallastBytes != 0 {
		t.Errorf("default min_free_bytes %d, ballast_bytes %d; want 0 and 0 (sized from the filesystem at open)",
			d.Storage.MinFreeBytes, d.Storage.BallastBytes)
	}
	c, err := Parse("[storage]\nmin_free_bytes = 1073741824\nballast_bytes = -1\n", "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.MinFreeBytes != 1<<30 || c.Storage.BallastBytes != -1 {
		t.Errorf("got min_free_bytes %d, ballast_bytes %d", c.Storage.MinFreeBytes, c.Storage.BallastBytes)
	}
	for text, want := range map[string][]string{
		"[storage]\nmin_free_bytes = -1\n":     {"storage.min_free_bytes", "t.toml:2"},
		"[storage]\n\nballast_bytes = -2\n":    {"storage.ballast_bytes", "t.toml:3"},
		"[storage]\nmin_free_bytes = \"1G\"\n": {"storage.min_free_bytes"},
	} {
		_, err := Parse(text, "t.toml")
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: got %v, want ErrInvalid", text, err)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not name %q", text, err, w)
			}
		}
	}
	ex, err := Load(filepath.Join("..", "config.toml.example"))
	if err != nil {
		t.Fatal(err)
	}
	if ex.Storage != d.Storage {
		t.Errorf("config.toml.example [storage] = %+v, want the defaults %+v", ex.Storage, d.Storage)
	}
}

// configKeys lists every key a file may set, as dotted paths of the toml
// tags ("server.listen", "thumbnails.sizes.width"); a list of tables adds
// its tables' keys under its own name, and a table of free-form entries
// (federation.routes) is one key.
func configKeys() []string {
	var keys []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			name := t.Field(i).Tag.Get("toml")
			if name == "" || name == "-" {
				continue
			}
			key, ft := joinKey(prefix, name), t.Field(i).Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				keys = append(keys, key)
				ft = ft.Elem()
			}
			if isTable(ft) {
				walk(key, ft)
				continue
			}
			keys = append(keys, key)
		}
	}
	walk("", reflect.TypeFor[Config]())
	return keys
}
