package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole file.
type Config struct {
	Server      Server       `toml:"server"`
	Storage     Storage      `toml:"storage"`
	Index       Index        `toml:"index"`
	Auth        Auth         `toml:"auth"`
	Uploads     Uploads      `toml:"uploads"`
	Quotas      []Quota      `toml:"quotas"`
	Thumbnails  Thumbnails   `toml:"thumbnails"`
	Homeservers []Homeserver `toml:"homeserver"`
	Federation  Federation   `toml:"federation"`
	URLPreviews URLPreviews  `toml:"url_previews"`
	Metrics     Metrics      `toml:"metrics"`
	RateLimits  RateLimits   `toml:"ratelimits"`
	GDPR        GDPR         `toml:"gdpr"`
	Replication Replication  `toml:"replication"`

	// Source is where the configuration came from: a file name, or
	// "embedded default".
	Source string `toml:"-"`
}

// Server is the [server] table.
type Server struct {
	Listen         string `toml:"listen"`
	DataDir        string `toml:"data_dir"`
	MaxUploadBytes int64  `toml:"max_upload_bytes"`
	// FreezeUnauthenticated: the legacy unauthenticated paths refuse media
	// stored while this is true.
	FreezeUnauthenticated bool `toml:"freeze_unauthenticated"`
	// AdminListen is the loopback address of the local admin endpoint used
	// by `mxcas fsck|gc|backup` while the server runs. Port 0 picks one.
	AdminListen string `toml:"admin_listen"`
	// TrustForwarded: take the host from X-Forwarded-Host and the client
	// IP (for rate limits) from X-Forwarded-For (behind a proxy that sets
	// them).
	TrustForwarded bool `toml:"trust_forwarded"`
	// ShutdownTimeout bounds how long in-flight requests may run after
	// SIGINT or SIGTERM.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// SoftMemoryLimit is the Go runtime's soft memory limit in bytes (the
	// garbage collector works harder near it; nothing fails). 0: none. The
	// GOMEMLIMIT environment variable, when set, wins.
	SoftMemoryLimit int64 `toml:"soft_memory_limit"`
	// MinTransferRate is the least bytes per second a request body must
	// arrive at, and a response be taken at, measured over TransferWindow;
	// a slower peer's connection is closed. 0 turns the check off.
	MinTransferRate int64 `toml:"min_transfer_rate"`
	// TransferWindow is the span MinTransferRate is measured over; a
	// stalled peer keeps its connection one to two windows.
	TransferWindow Duration `toml:"transfer_window"`
	// MaxConnections caps the client connections open at once (more wait
	// to be accepted); never more than the descriptor limit allows.
	MaxConnections int `toml:"max_connections"`
	// LogLevel is the least level logged: debug, info, warn or error.
	// SIGHUP applies a change (loglevel.go).
	LogLevel string `toml:"log_level"`
}

// Auth is the [auth] table.
type Auth struct {
	// CacheTTL is how long a token's whoami answer is trusted.
	CacheTTL Duration `toml:"cache_ttl"`
	// CacheSize bounds the number of cached tokens.
	CacheSize int `toml:"cache_size"`
	// WhoamiTimeout bounds a token check against the homeserver.
	WhoamiTimeout Duration `toml:"whoami_timeout"`
}

// Thumbnails is the [thumbnails] table.
type Thumbnails struct {
	// Pregenerate makes Sizes in the background after each image upload.
	Pregenerate bool            `toml:"pregenerate"`
	Sizes       []ThumbnailSize `toml:"sizes"`
	// Workers decode at once; 0 means the number of CPUs.
	Workers int `toml:"workers"`
	// MemoryBudget bounds the bytes all thumbnail work holds at once.
	MemoryBudget int64 `toml:"memory_budget"`
	// MaxPixels and MaxBytes refuse larger sources (413 M_TOO_LARGE).
	MaxPixels int64 `toml:"max_pixels"`
	MaxBytes  int64 `toml:"max_bytes"`
	// MaxDimension caps a requested width or height.
	MaxDimension int `toml:"max_dimension"`
	// FFmpeg is the ffmpeg binary (a name looked up in PATH, or a path)
	// that thumbnails video, audio and AVIF; empty turns that off.
	// FFprobe is its ffprobe; empty means the one beside FFmpeg.
	FFmpeg  string `toml:"ffmpeg"`
	FFprobe string `toml:"ffprobe"`
	// Each ffmpeg or ffprobe child: wall time, CPU seconds, address space.
	FFmpegTimeout    Duration `toml:"ffmpeg_timeout"`
	FFmpegCPUSeconds int      `toml:"ffmpeg_cpu_seconds"`
	FFmpegMemory     int64    `toml:"ffmpeg_memory_bytes"`
	// MaxMediaDuration refuses video and audio declaring more (413).
	MaxMediaDuration Duration `toml:"max_media_duration"`
}

// ThumbnailSize is one [[thumbnails.sizes]] entry.
type ThumbnailSize struct {
	Width  int    `toml:"width"`
	Height int    `toml:"height"`
	Method string `toml:"method"`
}

// Uploads is the [uploads] table: asynchronous uploads (create, then PUT).
type Uploads struct {
	// UnusedExpires is how long a created media ID waits for its content.
	UnusedExpires Duration `toml:"unused_expires"`
	// MaxPendingPerUser caps created IDs without content, per user.
	MaxPendingPerUser int `toml:"max_pending_per_user"`
}

// Homeserver is one [[homeserver]] table: a server name mxcas serves media
// for, chosen by the request's Host.
type Homeserver struct {
	// Name is the server name in mxc:// URIs and the Host it is reached by.
	Name string `toml:"name"`
	// ClientAPI is where access tokens are checked (GET
	// /_matrix/client/v3/account/whoami).
	ClientAPI string `toml:"client_api"`
	// SigningKey is a Synapse-format key file ("ed25519 <version> <seed>"),
	// relative to the config file's directory; empty for none.
	SigningKey string `toml:"signing_key"`
	// Admins are user IDs with admin rights on this homeserver's media.
	Admins []string `toml:"admins"`
	// StaticTokens maps access tokens to user IDs, checked before the
	// homeserver is asked: for trying mxcas without a homeserver, and for
	// tests. Empty (off) by default.
	StaticTokens map[string]string `toml:"static_tokens"`
}

// Federation is the [federation] table.
type Federation struct {
	// Routes maps a server name to a base URL, bypassing discovery.
	Routes map[string]string `toml:"routes"`
	// Timeout bounds fetching one remote media.
	Timeout Duration `toml:"timeout"`
	// MaxRemoteBytes caps a remote file (502 M_TOO_LARGE beyond).
	MaxRemoteBytes int64 `toml:"max_remote_bytes"`
	// Backoff is how long a failing server is not asked again.
	Backoff Duration `toml:"backoff"`
	// AllowedNetworks are CIDR prefixes that outbound federation may
	// reach although they are internal (loopback, private, link-local...,
	// refused by default). Hosts in Routes need no entry.
	AllowedNetworks []string `toml:"allowed_networks"`
}

// AllowedPrefixes returns AllowedNetworks parsed and masked; entries that
// do not parse are skipped (Validate refuses them).
func (f Federation) AllowedPrefixes() []netip.Prefix { return prefixes(f.AllowedNetworks) }

// Storage is the [storage] table.
type Storage struct {
	// GCGrace keeps unreferenced chunks younger than this.
	GCGrace Duration `toml:"gc_grace"`
	// GCInterval is how often `mxcas serve` runs GC by itself, so deleted
	// media is erased within gc_grace + gc_interval; the first run comes
	// one interval after the start. "0s" turns it off (`mxcas gc` then
	// does it).
	GCInterval Duration `toml:"gc_interval"`
	// MinFreeBytes: writes are refused (507) while the data directory's
	// filesystem has less free space. 0: the smaller of 2% of the
	// filesystem and 512 MiB.
	MinFreeBytes int64 `toml:"min_free_bytes"`
	// BallastBytes is the size of DATA/ballast, released when the index
	// finds the disk full. 0: the smaller of 1% of the filesystem and 64
	// MiB; -1: no ballast.
	BallastBytes int64 `toml:"ballast_bytes"`

	// Backend is where the chunks are: "local" (DATA/cas) or "s3" (a
	// bucket of an S3-compatible object store; the index stays in DATA).
	Backend string `toml:"backend"`
	// Endpoint is the object store's host:port (no scheme: UseSSL picks
	// https or http).
	Endpoint string `toml:"endpoint"`
	// Bucket holds the chunks; it must exist.
	Bucket string `toml:"bucket"`
	// Region, when the object store wants one ("" lets the client ask).
	Region string `toml:"region"`
	// Prefix is prepended to every object key (PREFIX/cas/ab/cd/<hash>).
	Prefix string `toml:"prefix"`
	// UseSSL: https to the endpoint (true) or plain http.
	UseSSL bool `toml:"use_ssl"`
	// CredentialsFile holds the access key (see cmd/mxcas); "" takes
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment.
	CredentialsFile string `toml:"credentials_file"`
	// CacheBytes bounds the local cache of hot chunks under DATA/cache
	// (backend s3 only); 0: no cache.
	CacheBytes int64 `toml:"cache_bytes"`
}

// Storage backends.
const (
	BackendLocal = "local"
	BackendS3    = "s3"
)

// Duration is a time.Duration written as "90s", "1h".
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the configuration used when there is no file.
func Default() Config {
	return Config{
		Server: Server{
			Listen:                "127.0.0.1:8001",
			DataDir:               "data",
			MaxUploadBytes:        100 << 20,
			FreezeUnauthenticated: true,
			AdminListen:           "127.0.0.1:0",
			ShutdownTimeout:       Duration{30 * time.Second},
			SoftMemoryLimit:       160 << 20,
			MinTransferRate:       1024,
			TransferWindow:        Duration{time.Minute},
			MaxConnections:        4096,
			LogLevel:              "info",
		},
		Auth: Auth{
			CacheTTL:      Duration{2 * time.Minute},
			CacheSize:     10000,
			WhoamiTimeout: Duration{10 * time.Second},
		},
		Uploads: Uploads{
			UnusedExpires:     Duration{24 * time.Hour},
			MaxPendingPerUser: 10,
		},
		Federation: Federation{
			Timeout:        Duration{60 * time.Second},
			MaxRemoteBytes: 100 << 20,
			Backoff:        Duration{time.Minute},
		},
		Thumbnails: Thumbnails{
			Pregenerate: true,
			Sizes: []ThumbnailSize{
				{32, 32, "crop"}, {96, 96, "crop"}, {320, 240, "scale"}, {640, 480, "scale"}, {800, 600, "scale"},
			},
			MemoryBudget:     512 << 20,
			MaxPixels:        32_000_000,
			MaxBytes:         64 << 20,
			MaxDimension:     1600,
			FFmpeg:           "ffmpeg",
			FFmpegTimeout:    Duration{20 * time.Second},
			FFmpegCPUSeconds: 15,
			FFmpegMemory:     1 << 30,
			MaxMediaDuration: Duration{4 * time.Hour},
		},
		Storage: Storage{GCGrace: Duration{time.Hour}, GCInterval: Duration{time.Hour},
			Backend: BackendLocal, UseSSL: true, CacheBytes: 1 << 30},
		Index:       Index{Backend: IndexPebble},
		URLPreviews: defaultURLPreviews(),
		RateLimits:  defaultRateLimits(),
		GDPR:        defaultGDPR(),
		Replication: Replication{KeepChanges: DefaultKeepChanges},
		Homeservers: []Homeserver{{
			Name:      "localhost",
			ClientAPI: "http://127.0.0.1:8008",
		}},
		Source: "embedded default",
	}
}

// ErrInvalid is wrapped by every configuration error.
var ErrInvalid = errors.New("config: invalid")

// Load reads the file at path. A relative data_dir, signing_key or
// [replication] file (secret, TLS) is taken relative to the file's
// directory, so commands find the same files wherever they run.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(string(b), path)
	if err != nil {
		return c, err
	}
	if !filepath.IsAbs(c.Server.DataDir) {
		c.Server.DataDir = filepath.Join(filepath.Dir(path), c.Server.DataDir)
	}
	for i, hs := range c.Homeservers {
		if hs.SigningKey != "" && !filepath.IsAbs(hs.SigningKey) {
			c.Homeservers[i].SigningKey = filepath.Join(filepath.Dir(path), hs.SigningKey)
		}
	}
	r := &c.Replication
	for _, f := range []*string{&c.Storage.CredentialsFile, &r.SecretFile, &r.TLSCert, &r.TLSKey, &r.TLSCA} {
		if *f != "" && !filepath.IsAbs(*f) {
			*f = filepath.Join(filepath.Dir(path), *f)
		}
	}
	return c, nil
}

// Find loads path when given; else ./mxcas.toml when it exists; else the
// embedded default (whose data_dir is relative to the working directory).
func Find(path string) (Config, error) {
	if path != "" {
		return Load(path)
	}
	if _, err := os.Stat("mxcas.toml"); err == nil {
		return Load("mxcas.toml")
	}
	return Default(), nil
}

// Parse decodes text (named name in messages) over the defaults and
// validates it.
func Parse(text, name string) (Config, error) {
	c := Default()
	c.Source = name
	c.Homeservers = nil      // a file that lists homeservers replaces the default one
	c.Thumbnails.Sizes = nil // likewise for thumbnail sizes
	md, err := toml.Decode(text, &c)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			if perr.LastKey != "" {
				return c, fmt.Errorf("%w: %s:%d: %s: %s", ErrInvalid, name, perr.Position.Line, perr.LastKey, perr.Message)
			}
			return c, fmt.Errorf("%w: %s:%d: %s", ErrInvalid, name, perr.Position.Line, perr.Message)
		}
		return c, fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
	}
	if len(c.Homeservers) == 0 {
		c.Homeservers = Default().Homeservers
	}
	if !md.IsDefined("thumbnails", "sizes") {
		c.Thumbnails.Sizes = Default().Thumbnails.Sizes
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return c, fmt.Errorf("%w: %s:%d: unknown key %q", ErrInvalid, name, lineOf(text, k), k.String())
	}
	if err := c.Validate(); err != nil {
		var ke keyError
		if errors.As(err, &ke) {
			return c, fmt.Errorf("%w: %s:%d: %s: %s", ErrInvalid, name, lineOf(text, ke.key), ke.key.String(), ke.msg)
		}
		return c, fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
	}
	return c, nil
}

type keyError struct {
	key toml.Key
	msg string
}

func (e keyError) Error() string { return e.key.String() + ": " + e.msg }

func bad(msg string, key ...string) error { return keyError{key: toml.Key(key), msg: msg} }

// Validate checks every value and returns the first problem found, naming
// its key. The checks run section by section in a fixed order, so a file
// with several problems always reports the same one.
func (c *Config) Validate() error {
	checks := []func() error{
		c.Server.validateServing,
		c.Server.validateAdminListen,
		c.Storage.validate,
		c.Storage.validateBackend,
		c.validateIndex,
		c.Server.validateProcessLimits,
		c.Server.validateConnectionLimits,
		c.Server.validateLogLevel,
		c.Auth.validate,
		c.Uploads.validate,
		func() error { return validateQuotas(c.Quotas) },
		c.Federation.validateFetchLimits,
		c.Federation.validateAllowedNetworks,
		c.URLPreviews.validate,
		c.Metrics.validate,
		c.RateLimits.validate,
		c.GDPR.validate,
		c.Replication.validate,
		c.Thumbnails.validate,
		func() error { return validateHomeservers(c.Homeservers) },
		c.Federation.validateRoutes,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// validateServing checks where the media API listens, where the store
// lives and how large an upload may be.
func (s Server) validateServing() error {
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		return bad(fmt.Sprintf("want host:port, got %q", s.Listen), "server", "listen")
	}
	if s.DataDir == "" {
		return bad("must not be empty", "server", "data_dir")
	}
	if s.MaxUploadBytes <= 0 {
		return bad("must be positive", "server", "max_upload_bytes")
	}
	return nil
}

// validateAdminListen checks that the local admin endpoint is a loopback
// host:port.
func (s Server) validateAdminListen() error {
	host, _, err := net.SplitHostPort(s.AdminListen)
	if err != nil {
		return bad(fmt.Sprintf("want host:port, got %q", s.AdminListen), "server", "admin_listen")
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return bad("must be a loopback address", "server", "admin_listen")
	}
	return nil
}

// validate checks the GC grace period and interval and the free-space
// reserves.
func (s Storage) validate() error {
	if s.GCGrace.Duration < time.Minute {
		return bad("must be at least 1m: an upload in flight must never look old", "storage", "gc_grace")
	}
	if s.GCInterval.Duration < 0 {
		return bad(`must be "0s" (no automatic GC) or positive`, "storage", "gc_interval")
	}
	if s.MinFreeBytes < 0 {
		return bad("must not be negative (0 picks the default)", "storage", "min_free_bytes")
	}
	if s.BallastBytes < -1 {
		return bad("must be -1 (none), 0 (the default) or a size in bytes", "storage", "ballast_bytes")
	}
	return nil
}

// validateBackend checks where the chunks are: an s3 backend needs an
// endpoint (host:port, no scheme) and a bucket; a local one takes none of
// them, so a half-written [storage] never silently stays local.
func (s Storage) validateBackend() error {
	switch s.Backend {
	case BackendLocal:
		if s.Endpoint != "" {
			return bad(`is set but backend is "local": set backend = "s3" or remove it`, "storage", "endpoint")
		}
		if s.Bucket != "" {
			return bad(`is set but backend is "local": set backend = "s3" or remove it`, "storage", "bucket")
		}
	case BackendS3:
		if s.Endpoint == "" {
			return bad(`must be set with backend = "s3" (host:port, such as "s3.amazonaws.com:443")`, "storage", "endpoint")
		}
		if strings.Contains(s.Endpoint, "://") {
			return bad(fmt.Sprintf("want host:port without a scheme (use_ssl picks https), got %q", s.Endpoint), "storage", "endpoint")
		}
		if host, port, err := net.SplitHostPort(s.Endpoint); err != nil || host == "" || strings.Contains(s.Endpoint, "/") || !validPort(port) {
			return bad(fmt.Sprintf("want host:port, got %q", s.Endpoint), "storage", "endpoint")
		}
		if s.Bucket == "" || strings.Contains(s.Bucket, "/") {
			return bad(fmt.Sprintf(`must name a bucket with backend = "s3" (no "/"), got %q`, s.Bucket), "storage", "bucket")
		}
	default:
		return bad(fmt.Sprintf(`must be "local" or "s3", got %q`, s.Backend), "storage", "backend")
	}
	if strings.HasPrefix(s.Prefix, "/") {
		return bad(fmt.Sprintf(`must not start with "/", got %q`, s.Prefix), "storage", "prefix")
	}
	if s.CacheBytes < 0 {
		return bad("must not be negative (0: no cache)", "storage", "cache_bytes")
	}
	return nil
}

// validateProcessLimits checks the memory limit and the shutdown timeout.
func (s Server) validateProcessLimits() error {
	if s.SoftMemoryLimit < 0 {
		return bad("must not be negative", "server", "soft_memory_limit")
	}
	if s.ShutdownTimeout.Duration <= 0 {
		return bad("must be positive", "server", "shutdown_timeout")
	}
	return nil
}

// validateConnectionLimits checks the slow-peer rate, its window and the
// connection cap.
func (s Server) validateConnectionLimits() error {
	if s.MinTransferRate < 0 {
		return bad("must not be negative (0 turns the check off)", "server", "min_transfer_rate")
	}
	if w := s.TransferWindow.Duration; w < time.Second || w > time.Hour {
		return bad(fmt.Sprintf("must be between 1s and 1h, got %s", w), "server", "transfer_window")
	}
	if s.MaxConnections <= 0 {
		return bad("must be positive", "server", "max_connections")
	}
	return nil
}

// validate checks the token cache and the whoami timeout.
func (a Auth) validate() error {
	if a.CacheTTL.Duration < 0 {
		return bad("must not be negative", "auth", "cache_ttl")
	}
	if a.CacheSize <= 0 {
		return bad("must be positive", "auth", "cache_size")
	}
	if a.WhoamiTimeout.Duration <= 0 {
		return bad("must be positive", "auth", "whoami_timeout")
	}
	return nil
}

// validate checks the expiry and per-user cap of asynchronous uploads.
func (u Uploads) validate() error {
	if u.UnusedExpires.Duration < time.Minute {
		return bad("must be at least 1m", "uploads", "unused_expires")
	}
	if u.MaxPendingPerUser <= 0 {
		return bad("must be positive", "uploads", "max_pending_per_user")
	}
	return nil
}

// validateFetchLimits checks the timeout, size cap and backoff of remote
// media fetches.
func (f Federation) validateFetchLimits() error {
	if f.Timeout.Duration <= 0 {
		return bad("must be positive", "federation", "timeout")
	}
	if f.MaxRemoteBytes <= 0 {
		return bad("must be positive", "federation", "max_remote_bytes")
	}
	if f.Backoff.Duration < 0 {
		return bad("must not be negative", "federation", "backoff")
	}
	return nil
}

// validateAllowedNetworks checks that every allowed network is a CIDR
// prefix.
func (f Federation) validateAllowedNetworks() error {
	return validateNetworks(f.AllowedNetworks, "federation", "allowed_networks")
}

// validate checks the thumbnail workers, budgets, source limits and
// pregenerated sizes.
func (t Thumbnails) validate() error {
	if t.Workers < 0 {
		return bad("must not be negative", "thumbnails", "workers")
	}
	if t.MemoryBudget < 16<<20 {
		return bad("must be at least 16 MiB", "thumbnails", "memory_budget")
	}
	if t.MaxPixels <= 0 {
		return bad("must be positive", "thumbnails", "max_pixels")
	}
	if t.MaxBytes <= 0 {
		return bad("must be positive", "thumbnails", "max_bytes")
	}
	if t.MaxDimension <= 0 {
		return bad("must be positive", "thumbnails", "max_dimension")
	}
	if t.FFmpegTimeout.Duration <= 0 {
		return bad("must be positive", "thumbnails", "ffmpeg_timeout")
	}
	if t.FFmpegCPUSeconds <= 0 {
		return bad("must be positive", "thumbnails", "ffmpeg_cpu_seconds")
	}
	if t.FFmpegMemory < 64<<20 {
		return bad("must be at least 64 MiB", "thumbnails", "ffmpeg_memory_bytes")
	}
	if t.MaxMediaDuration.Duration <= 0 {
		return bad("must be positive", "thumbnails", "max_media_duration")
	}
	for _, z := range t.Sizes {
		if z.Width <= 0 || z.Height <= 0 || (z.Method != "crop" && z.Method != "scale") {
			return bad(fmt.Sprintf("want width > 0, height > 0, method crop or scale; got %dx%d %q", z.Width, z.Height, z.Method), "thumbnails", "sizes")
		}
	}
	return nil
}

// validateHomeservers checks that every homeserver has a server name, no
// name is listed twice (names compare case-insensitively) and each one's
// access settings.
func validateHomeservers(list []Homeserver) error {
	seen := make(map[string]bool)
	for _, hs := range list {
		if !validServerName(hs.Name) {
			return bad(fmt.Sprintf("%q is not a server name (host[:port])", hs.Name), "homeserver", "name")
		}
		if seen[strings.ToLower(hs.Name)] {
			return bad(fmt.Sprintf("%q is listed twice", hs.Name), "homeserver", "name")
		}
		seen[strings.ToLower(hs.Name)] = true
		if err := hs.validateAccess(); err != nil {
			return err
		}
	}
	return nil
}

// validateAccess checks how a homeserver's tokens are checked (client_api
// or static_tokens) and that its admins and token users are user IDs.
func (hs Homeserver) validateAccess() error {
	if hs.ClientAPI != "" && !validBaseURL(hs.ClientAPI) {
		return bad(fmt.Sprintf("want an http:// or https:// URL, got %q", hs.ClientAPI), "homeserver", "client_api")
	}
	if hs.ClientAPI == "" && len(hs.StaticTokens) == 0 {
		return bad("is needed to check access tokens (or set static_tokens)", "homeserver", "client_api")
	}
	for _, a := range hs.Admins {
		if !validUserID(a) {
			return bad(fmt.Sprintf("%q is not a user ID (@user:server)", a), "homeserver", "admins")
		}
	}
	for tok, user := range hs.StaticTokens {
		if tok == "" || !validUserID(user) {
			return bad(fmt.Sprintf("want \"token\" = \"@user:server\", got %q = %q", tok, user), "homeserver", "static_tokens")
		}
	}
	return nil
}

// validateRoutes checks that every route maps a server name to an http://
// or https:// base URL.
func (f Federation) validateRoutes() error {
	for name, base := range f.Routes {
		if !validServerName(name) {
			return bad(fmt.Sprintf("%q is not a server name", name), "federation", "routes", name)
		}
		if !validBaseURL(base) {
			return bad(fmt.Sprintf("want an http:// or https:// URL, got %q", base), "federation", "routes", name)
		}
	}
	return nil
}

// validServerName checks the shape of a server name: host[:port] with a
// DNS name, IPv4 or [IPv6] host. (matrix.ValidateServerName is the full
// check; config imports no project package.)
func validServerName(s string) bool {
	if s == "" || len(s) > 255 || strings.ContainsAny(s, "/ \t@?#") {
		return false
	}
	host := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, s = s[1:end], s[end+1:]
		if net.ParseIP(host) == nil {
			return false
		}
		if s == "" {
			return true
		}
		return strings.HasPrefix(s, ":") && validPort(s[1:])
	}
	if h, p, err := net.SplitHostPort(s); err == nil {
		return h != "" && validPort(p)
	}
	return !strings.Contains(host, ":")
}

func validUserID(s string) bool {
	return strings.HasPrefix(s, "@") && strings.Contains(s, ":") && !strings.ContainsAny(s, " \t\n")
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536 && p[0] != '0' && p[0] != '+'
}

func validBaseURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// lineOf finds the line where key is set: the last part of the key, as a
// bare or quoted name followed by "=", inside the table named by the rest.
// It returns 0 when it cannot tell.
func lineOf(text string, key toml.Key) int {
	if len(key) == 0 {
		return 0
	}
	table := strings.Join(key[:len(key)-1], ".")
	name := regexp.QuoteMeta(key[len(key)-1])
	assign := regexp.MustCompile(`^\s*("` + name + `"|'` + name + `'|` + name + `)\s*=`)
	header := regexp.MustCompile(`^\s*\[\[?\s*([^\]]+?)\s*\]\]?`)
	current := ""
	for i, line := range strings.Split(text, "\n") {
		if m := header.FindStringSubmatch(line); m != nil {
			current = strings.ReplaceAll(m[1], " ", "")
			if current == strings.Join(key, ".") {
				return i + 1 // an unknown table
			}
			continue
		}
		if current == table && assign.MatchString(line) {
			return i + 1
		}
	}
	return 0
}
