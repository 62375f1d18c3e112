package config

// Index is the [index] table: where the index of media records is.
// Changes take effect at the next start (a reload refuses them).
type Index struct {
	// Backend is "pebble" (the default: DATA/index, one process) or
	// "postgres": the index in a PostgreSQL database that several mxcas
	// nodes share, each with a data directory of its own and the chunks in
	// one object store ([storage] backend = "s3").
	Backend string `toml:"backend"`
	// DSN names the database with backend = "postgres": a URL
	// ("postgres://mxcas@db.example:5432/mxcas?sslmode=verify-full") or
	// keyword string. Leave the password out of it: PGPASSWORD or a
	// PGPASSFILE (~/.pgpass) supply it. pool_max_conns defaults to 32.
	DSN string `toml:"dsn"`
}

// Index backends.
const (
	IndexPebble   = "pebble"
	IndexPostgres = "postgres"
)

func (c *Config) validateIndex() error {
	i := c.Index
	switch i.Backend {
	case IndexPebble:
		if i.DSN != "" {
			return bad(`is set but backend is "pebble": set backend = "postgres" or remove it`, "index", "dsn")
		}
	case IndexPostgres:
		if i.DSN == "" {
			return bad(`must name the database with backend = "postgres"`, "index", "dsn")
		}
		if c.Storage.Backend != BackendS3 {
			return bad(`"postgres" needs [storage] backend = "s3": the nodes sharing the index must share the chunks`, "index", "backend")
		}
		if c.Replication.Listen != "" || c.Replication.Primary != "" {
			return bad(`"postgres" does not take [replication]: replicate the database and the bucket instead`, "index", "backend")
		}
	default:
		return bad(`must be "pebble" or "postgres", got "`+i.Backend+`"`, "index", "backend")
	}
	return nil
}
