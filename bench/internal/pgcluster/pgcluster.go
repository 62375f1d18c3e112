// Package pgcluster runs a private PostgreSQL cluster for a bench command:
// initdb in a new temporary directory, the server on a free loopback port
// with "trust" authentication, fsync off (its figures are the index's
// work, not the disk's), stopped and removed at the end. As root the
// server's programs run as the user postgres (PostgreSQL refuses root).
// testkit/pg.go does the same for tests, which bench may not import.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Superuser is the role initdb creates, which every DSN names.
const Superuser = "mxcas"

// Cluster is a running cluster. Its methods are not safe for concurrent
// use.
type Cluster struct {
	Port int

	dir    string // owns data/, the socket and server.log
	binDir string // where initdb and pg_ctl are
	asUser string // run the programs as this user ("" = as we are)
	opts   string // the server options
}

// Start initialises a cluster in a new directory and starts it with extra
// server options (such as "-c max_connections=200"). The caller stops it
// with Stop.
func Start(extra string) (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{binDir: bin}
	parent := ""
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgcluster: running as root and no user postgres: %w", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		c.asUser, parent = "postgres", "/tmp" // TMPDIR may be under /root
	}
	if c.dir, err = os.MkdirTemp(parent, "mxcas-bench-pg-"); err != nil {
		return nil, err
	}
	if err := os.Chown(c.dir, uid, gid); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	if err := c.run("initdb", "-D", c.data(), "-A", "trust", "-U", Superuser, "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	if c.Port, err = freePort(); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	c.opts = fmt.Sprintf("-k %s -p %d -h 127.0.0.1 -c fsync=off -c full_page_writes=off %s", c.dir, c.Port, extra)
	if err := c.run("pg_ctl", "-D", c.data(), "-l", c.LogPath(), "-o", c.opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(c.LogPath())
		os.RemoveAll(c.dir)
		return nil, fmt.Errorf("%w\nserver.log:\n%s", err, log)
	}
	return c, nil
}

// binDir returns the directory of initdb and pg_ctl: from PATH, else the
// newest /usr/lib/postgresql/*/bin.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	major := func(d string) int { v, _ := strconv.Atoi(filepath.Base(filepath.Dir(d))); return v }
	slices.SortFunc(dirs, func(a, b string) int { return major(b) - major(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("pgcluster: PostgreSQL not found (no initdb in PATH or /usr/lib/postgresql/*/bin)")
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// Version returns the version pg_ctl reports ("16.4"), or "unknown".
func (c *Cluster) Version() string {
	out, err := exec.Command(filepath.Join(c.binDir, "pg_ctl"), "--version").Output()
	// "pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
	if _, v, ok := strings.Cut(string(out), "(PostgreSQL) "); err == nil && ok {
		return strings.Fields(v)[0]
	}
	return "unknown"
}

// Pid returns the process ID of the postmaster, the parent of every
// server process.
func (c *Cluster) Pid() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.data(), "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}

// LogPath is the server's log.
func (c *Cluster) LogPath() string { return filepath.Join(c.dir, "server.log") }

// run runs one of the server programs, its output in a file (never a
// pipe, which the postmaster pg_ctl starts would hold open).
func (c *Cluster) run(prog string, args ...string) error {
	path := filepath.Join(c.binDir, prog)
	cmd := exec.Command(path, args...)
	if c.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	}
	cmd.Dir = c.dir
	out, err := os.CreateTemp("", "mxcas-bench-pg-cmd-")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		return fmt.Errorf("%s %s: %w\n%s", prog, strings.Join(args, " "), err, b)
	}
	return nil
}

// Stop stops the server and removes its directory.
func (c *Cluster) Stop() error {
	err := c.run("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "stop")
	return errors.Join(err, os.RemoveAll(c.dir))
}

// DSN returns the URL of database db as the superuser.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, c.Port, db)
}

// CreateDB creates the empty database name, with pg_stat_statements
// installed where the cluster loads it.
func (c *Cluster) CreateDB(ctx context.Context, name string) error {
	err := c.exec(ctx, "postgres", func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		return err
	})
	if err != nil || !strings.Contains(c.opts, "pg_stat_statements") {
		return err
	}
	return c.exec(ctx, name, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "CREATE EXTENSION pg_stat_statements")
		return err
	})
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Statement is one normalised statement of pg_stat_statements, how often
// it ran and how long it took.
type Statement struct {
	Query string
	Calls int64
	Mean  float64 // mean execution time in the server, ms
}

// StartOptions are the server options Start takes to count statements
// (pg_stat_statements, which CreateDB installs in every new database).
const StartOptions = "-c shared_preload_libraries=pg_stat_statements"

// ResetStatements forgets the statements counted so far; db is a
// database CreateDB made.
func (c *Cluster) ResetStatements(ctx context.Context, db string) error {
	return c.exec(ctx, db, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "SELECT pg_stat_statements_reset()")
		return err
	})
}

// Statements returns the statements run on database db (one CreateDB
// made) since the last ResetStatements, the most frequent first. The cluster must have been
// started with StartOptions.
func (c *Cluster) Statements(ctx context.Context, db string) ([]Statement, error) {
	var st []Statement
	err := c.exec(ctx, db, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT query, calls, mean_exec_time FROM pg_stat_statements
			WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1) ORDER BY calls DESC`, db)
		if err != nil {
			return err
		}
		st, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Statement])
		return err
	})
	return st, err
}

// exec runs fn on a new connection to database db as the superuser.
func (c *Cluster) exec(ctx context.Context, db string, fn func(conn *pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, c.DSN(db))
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	defer conn.Close(ctx)
	if err := fn(conn); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return nil
}
