package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func TestExampleFileParses(t *testing.T) {
	c, err := Load(filepath.Join("..", "config.toml.example"))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Server.Listen != d.Server.Listen || c.Server.MaxUploadBytes != d.Server.MaxUploadBytes ||
		c.Server.AdminListen != d.Server.AdminListen || c.Storage.GCGrace != d.Storage.GCGrace ||
		c.Server.FreezeUnauthenticated != d.Server.FreezeUnauthenticated {
		t.Errorf("config.toml.example does not show the defaults: %+v", c)
	}
}
