package config

import (
	"strings"
	"testing"
)

// [ratelimits] has generous defaults, takes a partial table over them (an
// integer rate included), and refuses bad values naming the key and line.
func TestRateLimits(t *testing.T) {
	d := Default().RateLimits
	if d.Upload.PerUser != (Rate{10, 50}) || !d.ExemptAdmins || !d.ExemptAppservices || d.MaxTracked != 100_000 {
		t.Errorf("defaults = %+v", d)
	}
	c, err := Parse(`[ratelimits]
exempt_admins = false
appservice_users = ["@_bridge_*:example.org"]
max_tracked = 10
[ratelimits.upload]
per_user = { rate = 2 }
per_ip = { rate = 0.5, burst = 3 }
[ratelimits.download]
per_ip = { rate = 0 }
`, "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	r := c.RateLimits
	if r.Upload.PerUser != (Rate{2, 50}) || r.Upload.PerIP != (Rate{0.5, 3}) {
		t.Errorf("upload = %+v, want per_user {2 50} (burst kept), per_ip {0.5 3}", r.Upload)
	}
	if r.Download.PerIP.Rate != 0 || r.Download.PerUser != d.Download.PerUser || r.Thumbnail != d.Thumbnail {
		t.Errorf("download = %+v, thumbnail = %+v: want only download.per_ip changed", r.Download, r.Thumbnail)
	}
	if r.ExemptAdmins || !r.ExemptAppservices || r.MaxTracked != 10 || len(r.AppserviceUsers) != 1 {
		t.Errorf("ratelimits = %+v", r)
	}

	for _, tc := range []struct{ text, want string }{
		{"[ratelimits.upload]\nper_user = { rate = -1, burst = 1 }\n", "t.toml:2: ratelimits.upload.per_user: rate must be a non-negative number (0: unlimited), got -1"},
		{"[ratelimits.preview]\n\nper_ip = { rate = nan, burst = 1 }\n", "t.toml:3: ratelimits.preview.per_ip: rate must be a non-negative number"},
		{"[ratelimits.thumbnail]\nper_ip = { rate = inf, burst = 1 }\n", "ratelimits.thumbnail.per_ip: rate must be"},
		{"[ratelimits.remote_fetch]\nper_user = { rate = 1, burst = 0 }\n", "t.toml:2: ratelimits.remote_fetch.per_user: burst must be at least 1 when rate is set"},
		{"[ratelimits.download]\nper_user = { rate = 1, burst = -1 }\n", "ratelimits.download.per_user: burst must be between 0 and 10000000, got -1"},
		{"[ratelimits]\nmax_tracked = 0\n", "t.toml:2: ratelimits.max_tracked: must be between 1 and 10000000"},
		{"[ratelimits]\nappservice_users = [\"bridge_*\"]\n", `t.toml:2: ratelimits.appservice_users: want user ID globs such as "@_bridge_*:example.org", got "bridge_*"`},
		{"[ratelimits]\nappservice_users = [\"@[:x\"]\n", `ratelimits.appservice_users: want user ID globs`},
		{"[ratelimits.uploads]\nper_user = { rate = 1, burst = 1 }\n", `unknown key "ratelimits.uploads`},
		{"[ratelimits.upload]\nper_user = { rate = 1, bursts = 1 }\n", `unknown key "ratelimits.upload.per_user.bursts"`},
	} {
		_, err := Parse(tc.text, "t.toml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to contain %q", tc.text, err, tc.want)
		}
	}
	// rate 0 needs no burst.
	if _, err := Parse("[ratelimits.upload]\nper_user = { rate = 0, burst = 0 }\n", "t.toml"); err != nil {
		t.Errorf("rate 0 burst 0: %v", err)
	}
}

// The [ratelimits] rows of TestValidateRules and TestValidateRulesCoverEveryKey,
// added here so each part of the file keeps its rows in its own file.
func init() {
	keysWithoutRules["ratelimits.exempt_admins"] = "a bool"
	keysWithoutRules["ratelimits.exempt_appservices"] = "a bool"
	kinds := map[string]func(*RateLimits) *RateKind{
		"upload":       func(r *RateLimits) *RateKind { return &r.Upload },
		"download":     func(r *RateLimits) *RateKind { return &r.Download },
		"thumbnail":    func(r *RateLimits) *RateKind { return &r.Thumbnail },
		"preview":      func(r *RateLimits) *RateKind { return &r.Preview },
		"remote_fetch": func(r *RateLimits) *RateKind { return &r.RemoteFetch },
	}
	for _, name := range []string{"upload", "download", "thumbnail", "preview", "remote_fetch"} {
		kind := kinds[name]
		validateRules = append(validateRules,
			validateRule{"ratelimits." + name + ".per_user negative rate", func(c *Config) { kind(&c.RateLimits).PerUser.Rate = -0.1 },
				"ratelimits." + name + ".per_user: rate must be a non-negative number (0: unlimited), got -0.1"},
			validateRule{"ratelimits." + name + ".per_ip no burst", func(c *Config) { kind(&c.RateLimits).PerIP = Rate{0.01, 0} },
				"ratelimits." + name + ".per_ip: burst must be at least 1 when rate is set (rate 0 is unlimited)"},
			validateRule{"ratelimits." + name + " unlimited", func(c *Config) { *kind(&c.RateLimits) = RateKind{} }, ""},
		)
	}
	validateRules = append(validateRules,
		validateRule{"ratelimits.max_tracked zero", func(c *Config) { c.RateLimits.MaxTracked = 0 }, "ratelimits.max_tracked: must be between 1 and 10000000"},
		validateRule{"ratelimits.max_tracked too large", func(c *Config) { c.RateLimits.MaxTracked = 10_000_001 }, "ratelimits.max_tracked: must be between 1 and 10000000"},
		validateRule{"ratelimits.max_tracked 1", func(c *Config) { c.RateLimits.MaxTracked = 1 }, ""},
		validateRule{"ratelimits.appservice_users not a user glob", func(c *Config) { c.RateLimits.AppserviceUsers = []string{"*"} },
			`ratelimits.appservice_users: want user ID globs such as "@_bridge_*:example.org", got "*"`},
		validateRule{"ratelimits.appservice_users", func(c *Config) {
			c.RateLimits.AppserviceUsers = []string{"@_bridge_*:example.org", "@bridgebot:example.org"}
		}, ""},
	)
}
