package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// validBase is a valid configuration that fills every list and table
// Validate walks (allowed networks, sizes, two homeservers with admins and
// static tokens, routes), so each row's mutation is the only fault in it.
func validBase() Config {
	c := Default()
	c.Federation.AllowedNetworks = []string{"10.0.0.0/8", " fd00::/8 "}
	c.Federation.Routes = map[string]string{"far.example": "http://127.0.0.1:8002", "[::1]:8448": "https://[::1]:8448"}
	c.Homeservers = []Homeserver{
		{
			Name:         "example.org",
			ClientAPI:    "http://127.0.0.1:8008",
			SigningKey:   "example.org.signing.key",
			Admins:       []string{"@admin:example.org"},
			StaticTokens: map[string]string{"try-me": "@alice:example.org"},
		},
		{Name: "other.example:8448", ClientAPI: "https://matrix.other.example"},
	}
	return c
}

// validateRule is one row of TestValidateRules: a mutation of validBase and
// the whole error Validate must return ("" for none).
type validateRule struct {
	name   string
	mutate func(*Config)
	want   string
}

// firstHomeserver and secondHomeserver make a mutation of one homeserver.
func firstHomeserver(f func(*Homeserver)) func(*Config) {
	return func(c *Config) { f(&c.Homeservers[0]) }
}

func secondHomeserver(f func(*Homeserver)) func(*Config) {
	return func(c *Config) { f(&c.Homeservers[1]) }
}

func seconds(n float64) Duration { return Duration{time.Duration(n * float64(time.Second))} }

// validateRules has a failing row for every rule Validate enforces (and for
// each part of a rule with several), and passing rows at the edges the
// rules allow, so dropping or loosening a rule fails a row.
var validateRules = []validateRule{
	{"valid base", func(*Config) {}, ""},
	{"embedded default", func(c *Config) { *c = Default() }, ""},

	{"server.listen not host:port", func(c *Config) { c.Server.Listen = "nope" }, `server.listen: want host:port, got "nope"`},
	{"server.data_dir empty", func(c *Config) { c.Server.DataDir = "" }, "server.data_dir: must not be empty"},
	{"server.max_upload_bytes zero", func(c *Config) { c.Server.MaxUploadBytes = 0 }, "server.max_upload_bytes: must be positive"},
	{"server.admin_listen not host:port", func(c *Config) { c.Server.AdminListen = "127.0.0.1" }, `server.admin_listen: want host:port, got "127.0.0.1"`},
	{"server.admin_listen any address", func(c *Config) { c.Server.AdminListen = "0.0.0.0:1" }, "server.admin_listen: must be a loopback address"},
	{"server.admin_listen a name", func(c *Config) { c.Server.AdminListen = "example.org:1" }, "server.admin_listen: must be a loopback address"},
	{"server.admin_listen localhost", func(c *Config) { c.Server.AdminListen = "localhost:0" }, ""},
	{"server.admin_listen IPv6 loopback", func(c *Config) { c.Server.AdminListen = "[::1]:9" }, ""},

	{"storage.gc_grace under 1m", func(c *Config) { c.Storage.GCGrace = seconds(59) }, "storage.gc_grace: must be at least 1m: an upload in flight must never look old"},
	{"storage.gc_grace 1m", func(c *Config) { c.Storage.GCGrace = seconds(60) }, ""},
	{"storage.gc_interval negative", func(c *Config) { c.Storage.GCInterval = seconds(-1) }, `storage.gc_interval: must be "0s" (no automatic GC) or positive`},
	{"storage.gc_interval off", func(c *Config) { c.Storage.GCInterval = seconds(0) }, ""},
	{"storage.min_free_bytes negative", func(c *Config) { c.Storage.MinFreeBytes = -1 }, "storage.min_free_bytes: must not be negative (0 picks the default)"},
	{"storage.ballast_bytes below -1", func(c *Config) { c.Storage.BallastBytes = -2 }, "storage.ballast_bytes: must be -1 (none), 0 (the default) or a size in bytes"},
	{"storage.ballast_bytes -1", func(c *Config) { c.Storage.BallastBytes = -1 }, ""},
	{"storage.backend unknown", func(c *Config) { c.Storage.Backend = "S3" }, `storage.backend: must be "local" or "s3", got "S3"`},
	{"storage.backend empty", func(c *Config) { c.Storage.Backend = "" }, `storage.backend: must be "local" or "s3", got ""`},
	{"storage.endpoint with backend local", func(c *Config) { c.Storage.Endpoint = "127.0.0.1:9000" },
		`storage.endpoint: is set but backend is "local": set backend = "s3" or remove it`},
	{"storage.bucket with backend local", func(c *Config) { c.Storage.Bucket = "media" },
		`storage.bucket: is set but backend is "local": set backend = "s3" or remove it`},
	{"storage.endpoint missing", func(c *Config) { c.Storage = s3Storage(c, "", "media") },
		`storage.endpoint: must be set with backend = "s3" (host:port, such as "s3.amazonaws.com:443")`},
	{"storage.endpoint with a scheme", func(c *Config) { c.Storage = s3Storage(c, "https://s3.example:443", "media") },
		`storage.endpoint: want host:port without a scheme (use_ssl picks https), got "https://s3.example:443"`},
	{"storage.endpoint without port", func(c *Config) { c.Storage = s3Storage(c, "s3.example", "media") },
		`storage.endpoint: want host:port, got "s3.example"`},
	{"storage.endpoint with a path", func(c *Config) { c.Storage = s3Storage(c, "s3.example:443/media", "media") },
		`storage.endpoint: want host:port, got "s3.example:443/media"`},
	{"storage.endpoint bad port", func(c *Config) { c.Storage = s3Storage(c, "s3.example:0", "media") },
		`storage.endpoint: want host:port, got "s3.example:0"`},
	{"storage.bucket missing", func(c *Config) { c.Storage = s3Storage(c, "s3.example:443", "") },
		`storage.bucket: must name a bucket with backend = "s3" (no "/"), got ""`},
	{"storage.bucket with a slash", func(c *Config) { c.Storage = s3Storage(c, "s3.example:443", "a/b") },
		`storage.bucket: must name a bucket with backend = "s3" (no "/"), got "a/b"`},
	{"storage s3", func(c *Config) { c.Storage = s3Storage(c, "[::1]:9000", "media") }, ""},
	{"storage.prefix absolute", func(c *Config) { c.Storage = s3Storage(c, "s3.example:443", "media"); c.Storage.Prefix = "/mxcas" },
		`storage.prefix: must not start with "/", got "/mxcas"`},
	{"storage.prefix relative", func(c *Config) { c.Storage = s3Storage(c, "s3.example:443", "media"); c.Storage.Prefix = "mxcas/prod" }, ""},
	{"storage.cache_bytes negative", func(c *Config) { c.Storage.CacheBytes = -1 }, "storage.cache_bytes: must not be negative (0: no cache)"},
	{"storage.cache_bytes off", func(c *Config) { c.Storage.CacheBytes = 0 }, ""},
	{"index.backend unknown", func(c *Config) { c.Index.Backend = "sqlite" }, `index.backend: must be "pebble" or "postgres", got "sqlite"`},
	{"index.dsn without postgres", func(c *Config) { c.Index.DSN = "postgres://x/y" }, `index.dsn: is set but backend is "pebble": set backend = "postgres" or remove it`},
	{"index.dsn missing", func(c *Config) { c.Index.Backend = "postgres" }, `index.dsn: must name the database with backend = "postgres"`},
	{"index postgres local chunks", func(c *Config) { c.Index.Backend, c.Index.DSN = "postgres", "postgres://x/y" }, `index.backend: "postgres" needs [storage] backend = "s3": the nodes sharing the index must share the chunks`},
	{"index postgres replication", func(c *Config) {
		c.Index.Backend, c.Index.DSN = "postgres", "postgres://x/y"
		c.Storage.Backend, c.Storage.Endpoint, c.Storage.Bucket = "s3", "127.0.0.1:9000", "b"
		c.Replication.Listen = "127.0.0.1:8009"
	}, `index.backend: "postgres" does not take [replication]: replicate the database and the bucket instead`},
	{"index postgres ok", func(c *Config) {
		c.Index.Backend, c.Index.DSN = "postgres", "postgres://x/y"
		c.Storage.Backend, c.Storage.Endpoint, c.Storage.Bucket = "s3", "127.0.0.1:9000", "b"
	}, ""},

	{"server.soft_memory_limit negative", func(c *Config) { c.Server.SoftMemoryLimit = -1 }, "server.soft_memory_limit: must not be negative"},
	{"server.soft_memory_limit off", func(c *Config) { c.Server.SoftMemoryLimit = 0 }, ""},
	{"server.shutdown_timeout zero", func(c *Config) { c.Server.ShutdownTimeout = seconds(0) }, "server.shutdown_timeout: must be positive"},
	{"server.min_transfer_rate negative", func(c *Config) { c.Server.MinTransferRate = -1 }, "server.min_transfer_rate: must not be negative (0 turns the check off)"},
	{"server.min_transfer_rate off", func(c *Config) { c.Server.MinTransferRate = 0 }, ""},
	{"server.transfer_window under 1s", func(c *Config) { c.Server.TransferWindow = seconds(0.999) }, "server.transfer_window: must be between 1s and 1h, got 999ms"},
	{"server.transfer_window over 1h", func(c *Config) { c.Server.TransferWindow = seconds(3601) }, "server.transfer_window: must be between 1s and 1h, got 1h0m1s"},
	{"server.transfer_window 1s", func(c *Config) { c.Server.TransferWindow = seconds(1) }, ""},
	{"server.transfer_window 1h", func(c *Config) { c.Server.TransferWindow = seconds(3600) }, ""},
	{"server.max_connections zero", func(c *Config) { c.Server.MaxConnections = 0 }, "server.max_connections: must be positive"},
	{"server.log_level unknown", func(c *Config) { c.Server.LogLevel = "loud" }, "server.log_level: want debug, info, warn or error, got \"loud\""},

	{"auth.cache_ttl negative", func(c *Config) { c.Auth.CacheTTL = seconds(-1) }, "auth.cache_ttl: must not be negative"},
	{"auth.cache_ttl zero", func(c *Config) { c.Auth.CacheTTL = seconds(0) }, ""},
	{"auth.cache_size zero", func(c *Config) { c.Auth.CacheSize = 0 }, "auth.cache_size: must be positive"},
	{"auth.whoami_timeout zero", func(c *Config) { c.Auth.WhoamiTimeout = seconds(0) }, "auth.whoami_timeout: must be positive"},

	{"uploads.unused_expires under 1m", func(c *Config) { c.Uploads.UnusedExpires = seconds(59) }, "uploads.unused_expires: must be at least 1m"},
	{"uploads.unused_expires 1m", func(c *Config) { c.Uploads.UnusedExpires = seconds(60) }, ""},
	{"uploads.max_pending_per_user zero", func(c *Config) { c.Uploads.MaxPendingPerUser = 0 }, "uploads.max_pending_per_user: must be positive"},

	{"federation.timeout zero", func(c *Config) { c.Federation.Timeout = seconds(0) }, "federation.timeout: must be positive"},
	{"federation.max_remote_bytes zero", func(c *Config) { c.Federation.MaxRemoteBytes = 0 }, "federation.max_remote_bytes: must be positive"},
	{"federation.backoff negative", func(c *Config) { c.Federation.Backoff = seconds(-1) }, "federation.backoff: must not be negative"},
	{"federation.backoff zero", func(c *Config) { c.Federation.Backoff = seconds(0) }, ""},
	{"federation.allowed_networks bare address", func(c *Config) {
		c.Federation.AllowedNetworks = append(c.Federation.AllowedNetworks, "10.0.0.1")
	}, `federation.allowed_networks: want CIDR prefixes such as "10.0.0.0/8" or "fd00::/8", got "10.0.0.1"`},

	{"url_previews.denied_networks bare address", func(c *Config) { c.URLPreviews.DeniedNetworks = []string{"10.0.0.1"} },
		`url_previews.denied_networks: want CIDR prefixes such as "10.0.0.0/8" or "fd00::/8", got "10.0.0.1"`},
	{"url_previews.allowed_networks not a prefix", func(c *Config) { c.URLPreviews.AllowedNetworks = []string{"localhost"} },
		`url_previews.allowed_networks: want CIDR prefixes such as "10.0.0.0/8" or "fd00::/8", got "localhost"`},
	{"url_previews networks", func(c *Config) {
		c.URLPreviews.AllowedNetworks, c.URLPreviews.DeniedNetworks = []string{"127.0.0.1/32"}, []string{" 203.0.113.0/24 "}
	}, ""},
	{"url_previews.denied_domains bad glob", func(c *Config) { c.URLPreviews.DeniedDomains = []string{"[a-"} },
		`url_previews.denied_domains: want host name globs such as "*.example.org", got "[a-"`},
	{"url_previews.allowed_domains a URL", func(c *Config) { c.URLPreviews.AllowedDomains = []string{"https://example.org"} },
		`url_previews.allowed_domains: want host name globs such as "*.example.org", got "https://example.org"`},
	{"url_previews.allowed_domains empty", func(c *Config) { c.URLPreviews.AllowedDomains = []string{""} },
		`url_previews.allowed_domains: want host name globs such as "*.example.org", got ""`},
	{"url_previews domains", func(c *Config) {
		c.URLPreviews.DeniedDomains, c.URLPreviews.AllowedDomains = []string{"*.example.org"}, []string{"ok.example.org"}
	}, ""},
	{"url_previews.max_bytes zero", func(c *Config) { c.URLPreviews.MaxBytes = 0 }, "url_previews.max_bytes: must be positive"},
	{"url_previews.timeout zero", func(c *Config) { c.URLPreviews.Timeout = seconds(0) }, "url_previews.timeout: must be positive"},
	{"url_previews.max_redirects negative", func(c *Config) { c.URLPreviews.MaxRedirects = -1 }, "url_previews.max_redirects: must be between 0 and 20"},
	{"url_previews.max_redirects zero", func(c *Config) { c.URLPreviews.MaxRedirects = 0 }, ""},
	{"url_previews.max_redirects 21", func(c *Config) { c.URLPreviews.MaxRedirects = 21 }, "url_previews.max_redirects: must be between 0 and 20"},
	{"url_previews.max_redirects 20", func(c *Config) { c.URLPreviews.MaxRedirects = 20 }, ""},
	{"url_previews.user_agent empty", func(c *Config) { c.URLPreviews.UserAgent = " " }, "url_previews.user_agent: must not be empty"},
	{"url_previews.user_agent header injection", func(c *Config) { c.URLPreviews.UserAgent = "a\r\nX-Evil: 1" },
		"url_previews.user_agent: must not hold control characters"},
	{"url_previews.cache_duration under an hour", func(c *Config) { c.URLPreviews.CacheDuration = seconds(3599) },
		"url_previews.cache_duration: must be at least 1h"},
	{"url_previews.cache_duration an hour", func(c *Config) { c.URLPreviews.CacheDuration = seconds(3600) }, ""},
	{"url_previews disabled still checked", func(c *Config) { c.URLPreviews.Enabled, c.URLPreviews.MaxBytes = false, -1 },
		"url_previews.max_bytes: must be positive"},

	{"thumbnails.workers negative", func(c *Config) { c.Thumbnails.Workers = -1 }, "thumbnails.workers: must not be negative"},
	{"thumbnails.memory_budget under 16 MiB", func(c *Config) { c.Thumbnails.MemoryBudget = 16<<20 - 1 }, "thumbnails.memory_budget: must be at least 16 MiB"},
	{"thumbnails.memory_budget 16 MiB", func(c *Config) { c.Thumbnails.MemoryBudget = 16 << 20 }, ""},
	{"thumbnails.max_pixels zero", func(c *Config) { c.Thumbnails.MaxPixels = 0 }, "thumbnails.max_pixels: must be positive"},
	{"thumbnails.max_bytes zero", func(c *Config) { c.Thumbnails.MaxBytes = 0 }, "thumbnails.max_bytes: must be positive"},
	{"thumbnails.max_dimension zero", func(c *Config) { c.Thumbnails.MaxDimension = 0 }, "thumbnails.max_dimension: must be positive"},
	{"thumbnails.ffmpeg_timeout zero", func(c *Config) { c.Thumbnails.FFmpegTimeout.Duration = 0 }, "thumbnails.ffmpeg_timeout: must be positive"},
	{"thumbnails.ffmpeg_cpu_seconds zero", func(c *Config) { c.Thumbnails.FFmpegCPUSeconds = 0 }, "thumbnails.ffmpeg_cpu_seconds: must be positive"},
	{"thumbnails.ffmpeg_memory_bytes small", func(c *Config) { c.Thumbnails.FFmpegMemory = 1 << 20 }, "thumbnails.ffmpeg_memory_bytes: must be at least 64 MiB"},
	{"thumbnails.max_media_duration negative", func(c *Config) { c.Thumbnails.MaxMediaDuration.Duration = -time.Second }, "thumbnails.max_media_duration: must be positive"},
	{"thumbnails.sizes zero width", func(c *Config) { c.Thumbnails.Sizes[1].Width = 0 }, `thumbnails.sizes: want width > 0, height > 0, method crop or scale; got 0x96 "crop"`},
	{"thumbnails.sizes zero height", func(c *Config) { c.Thumbnails.Sizes[2].Height = 0 }, `thumbnails.sizes: want width > 0, height > 0, method crop or scale; got 320x0 "scale"`},
	{"thumbnails.sizes unknown method", func(c *Config) { c.Thumbnails.Sizes[4].Method = "fit" }, `thumbnails.sizes: want width > 0, height > 0, method crop or scale; got 800x600 "fit"`},

	{"homeserver.name with a space", firstHomeserver(func(h *Homeserver) { h.Name = "exa mple" }), `homeserver.name: "exa mple" is not a server name (host[:port])`},
	{"homeserver.name port 0", secondHomeserver(func(h *Homeserver) { h.Name = "other.example:0" }), `homeserver.name: "other.example:0" is not a server name (host[:port])`},
	{"homeserver.name IPv6", secondHomeserver(func(h *Homeserver) { h.Name = "[::1]:8448" }), ""},
	{"homeserver.name twice, other case", secondHomeserver(func(h *Homeserver) { h.Name = "EXAMPLE.org" }), `homeserver.name: "EXAMPLE.org" is listed twice`},
	{"homeserver.client_api not http", secondHomeserver(func(h *Homeserver) { h.ClientAPI = "ftp://x" }), `homeserver.client_api: want an http:// or https:// URL, got "ftp://x"`},
	{"homeserver.client_api missing", secondHomeserver(func(h *Homeserver) { h.ClientAPI = "" }), "homeserver.client_api: is needed to check access tokens (or set static_tokens)"},
	{"homeserver.client_api empty with static_tokens", firstHomeserver(func(h *Homeserver) { h.ClientAPI = "" }), ""},
	{"homeserver.admins not a user ID", firstHomeserver(func(h *Homeserver) { h.Admins = append(h.Admins, "admin") }), `homeserver.admins: "admin" is not a user ID (@user:server)`},
	{"homeserver.static_tokens empty token", firstHomeserver(func(h *Homeserver) { h.StaticTokens[""] = "@bob:example.org" }), `homeserver.static_tokens: want "token" = "@user:server", got "" = "@bob:example.org"`},
	{"homeserver.static_tokens not a user ID", firstHomeserver(func(h *Homeserver) { h.StaticTokens["t2"] = "bob" }), `homeserver.static_tokens: want "token" = "@user:server", got "t2" = "bob"`},

	{"federation.routes bad server name", func(c *Config) { c.Federation.Routes["a/b"] = "http://x" }, `federation.routes."a/b": "a/b" is not a server name`},
	{"federation.routes not a URL", func(c *Config) { c.Federation.Routes["near.example"] = "nope" }, `federation.routes."near.example": want an http:// or https:// URL, got "nope"`},

	{"metrics.listen not host:port", func(c *Config) { c.Metrics.Listen = "9100" }, `metrics.listen: want host:port or "" (off), got "9100"`},
	{"gdpr.export_ttl under a minute", func(c *Config) { c.GDPR.ExportTTL = seconds(59) }, "gdpr.export_ttl: must be at least 1m"},
	{"gdpr.export_ttl a minute", func(c *Config) { c.GDPR.ExportTTL = seconds(60) }, ""},
	{"gdpr.part_size under 1 MiB", func(c *Config) { c.GDPR.PartSize = 1<<20 - 1 }, "gdpr.part_size: must be at least 1048576 (1 MiB)"},

	{"replication.listen not host:port", func(c *Config) { c.Replication.Listen = "8009" }, `replication.listen: want host:port or "" (off), got "8009"`},
	{"replication.listen public", func(c *Config) { c.Replication = replicating(c, "0.0.0.0:8009", "") }, ""},
	{"replication.primary not a URL", func(c *Config) { c.Replication = replicating(c, "", "10.0.0.1:8009") }, `replication.primary: want the http:// or https:// URL of the primary's replication listener, got "10.0.0.1:8009"`},
	{"replication.primary and listen (a cascading standby)", func(c *Config) { c.Replication = replicating(c, "[::]:8009", "https://p.example:8009") }, ""},
	{"replication.listen without secret_file", func(c *Config) { c.Replication.Listen = "127.0.0.1:8009" }, "replication.listen: needs [replication] secret_file: every replication request carries the shared secret"},
	{"replication.primary without secret_file", func(c *Config) { c.Replication.Primary = "http://127.0.0.1:8009" }, "replication.primary: needs [replication] secret_file: every replication request carries the shared secret"},
	{"replication.secret_file alone (fsck -repair-from a URL)", func(c *Config) { c.Replication.SecretFile = "s" }, ""},
	{"replication.tls_key without tls_cert", func(c *Config) { c.Replication = replicating(c, "127.0.0.1:8009", ""); c.Replication.TLSKey = "k" }, "replication.tls_key: tls_cert and tls_key go together: set both or neither"},
	{"replication.tls_cert without tls_key", func(c *Config) { c.Replication = replicating(c, "127.0.0.1:8009", ""); c.Replication.TLSCert = "c" }, "replication.tls_key: tls_cert and tls_key go together: set both or neither"},
	{"replication.tls_cert without listen", func(c *Config) {
		c.Replication = replicating(c, "", "http://127.0.0.1:8009")
		c.Replication.TLSCert, c.Replication.TLSKey = "c", "k"
	}, "replication.tls_cert: needs [replication] listen: the certificate is served on the replication listener"},
	{"replication.keep_changes zero", func(c *Config) { c.Replication.KeepChanges = 0 }, "replication.keep_changes: must be positive"},
	{"replication.keep_changes one", func(c *Config) { c.Replication.KeepChanges = 1 }, ""},

	{"metrics.pprof without listen", func(c *Config) { c.Metrics.Pprof = true }, `metrics.pprof: needs [metrics] listen: /debug/pprof/ is served on the metrics listener`},
}

// s3Storage is c's [storage] with backend s3 at endpoint and bucket.
func s3Storage(c *Config, endpoint, bucket string) Storage {
	s := c.Storage
	s.Backend, s.Endpoint, s.Bucket = BackendS3, endpoint, bucket
	return s
}

// replicating is c's [replication] with listen and primary set and a
// secret file.
func replicating(c *Config, listen, primary string) Replication {
	r := c.Replication
	r.Listen, r.Primary, r.SecretFile = listen, primary, "replication.secret"
	return r
}

func TestValidateRules(t *testing.T) {
	for _, r := range validateRules {
		t.Run(r.name, func(t *testing.T) {
			c := validBase()
			r.mutate(&c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != r.want {
				t.Errorf("Validate() = %q, want %q", got, r.want)
			}
			var ke keyError
			if err != nil && !errors.As(err, &ke) {
				t.Errorf("Validate() = %T, want a keyError (Parse reports its key and line)", err)
			}
		})
	}
}

// keysWithoutRules are the keys Validate takes as they come, and why.
var keysWithoutRules = map[string]string{
	"server.freeze_unauthenticated": "a bool",
	"server.trust_forwarded":        "a bool",
	"thumbnails.pregenerate":        "a bool",
	"url_previews.enabled":          "a bool",
	"gdpr.self_service":             "a bool",
	"homeserver.signing_key":        "any path; the file is read and checked when the server starts",
	"replication.tls_ca":            "any path; the file is read and checked when the server starts",
	"thumbnails.ffmpeg":             "a name or path; looked up when the server starts, and a missing binary turns video thumbnails off with a warning",
	"thumbnails.ffprobe":            "a name or path; looked up when the server starts, as ffmpeg",
	"replication.secret_file":       "any path; the file is read and checked when the server starts (listen and primary need it)",
	"storage.region":                "any name; the object store checks it",
	"storage.use_ssl":               "a bool",
	"storage.credentials_file":      "any path; the file is read and checked when the store is opened",
}

// TestValidateRulesCoverEveryKey makes a new key choose: a row in
// validateRules for its rule, or an entry in keysWithoutRules.
func TestValidateRulesCoverEveryKey(t *testing.T) {
	ruled := make(map[string]bool)
	for _, r := range validateRules {
		c := validBase()
		r.mutate(&c)
		var ke keyError
		if errors.As(c.Validate(), &ke) {
			ruled[strings.Join(ke.key, ".")] = true
		}
	}
	for _, key := range configKeys() {
		if _, ok := keysWithoutRules[key]; ok {
			if ruled[key] {
				t.Errorf("%s has a rule but is listed in keysWithoutRules", key)
			}
			continue
		}
		if !ruledUnder(ruled, key) {
			t.Errorf("%s: no row in validateRules fails on it and it is not in keysWithoutRules", key)
		}
	}
}

// ruledUnder reports whether a failing row names key, a table holding it
// (thumbnails.sizes holds thumbnails.sizes.width) or an entry of it
// (federation.routes.far.example is in federation.routes).
func ruledUnder(ruled map[string]bool, key string) bool {
	for k := range ruled {
		if k == key || strings.HasPrefix(key, k+".") || strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}
