package testkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGCluster is a private PostgreSQL cluster in a temporary directory,
// listening on 127.0.0.1:Port with "trust" authentication for its superuser
// User. As root, its programs run as the user postgres.
type PGCluster struct {
	Port int
	User string

	dir     string // owns data/, the socket and the log
	binDir  string // where initdb and pg_ctl are
	asUser  string // run the server programs as this user ("" = as we are)
	started bool
	dbs     atomic.Int64
}

var (
	pgOnce    sync.Once
	pgShared  *PGCluster
	pgErr     error // the cluster could not be started
	pgMissing error // PostgreSQL is not installed
)

// PGRequired reports whether a missing PostgreSQL is a failure rather than a
// reason to skip: in CI (CI=1 or true) and when MXCAS_REQUIRE_PG=1.
func PGRequired() bool {
	ci := strings.ToLower(os.Getenv("CI"))
	return ci == "1" || ci == "true" || os.Getenv("MXCAS_REQUIRE_PG") == "1"
}

// SharedPG returns the cluster of this test binary, starting it (with
// superuser) on first use; StopSharedPG, from TestMain, stops it. Without
// PostgreSQL the test fails when PGRequired, else it is skipped.
func SharedPG(t testing.TB, superuser string) *PGCluster {
	t.Helper()
	pgOnce.Do(func() { pgShared, pgMissing, pgErr = StartPG(superuser) })
	if pgMissing != nil {
		if PGRequired() {
			t.Fatalf("PostgreSQL is required (CI or MXCAS_REQUIRE_PG=1) but not installed: %v", pgMissing)
		}
		t.Skipf("PostgreSQL not installed (%v); set MXCAS_REQUIRE_PG=1 to make this a failure", pgMissing)
	}
	if pgErr != nil {
		t.Fatalf("start PostgreSQL: %v", pgErr)
	}
	return pgShared
}

// RunWithPG runs a package's tests (m.Run) and then stops the cluster
// SharedPG started for them, if any, returning the exit code: a TestMain is
// os.Exit(testkit.RunWithPG(m)).
func RunWithPG(m *testing.M) int {
	code := m.Run()
	StopSharedPG()
	return code
}

// StopSharedPG stops the cluster SharedPG started, if any.
func StopSharedPG() {
	if pgShared != nil {
		if err := pgShared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop PostgreSQL:", err)
		}
	}
}

// findPGBin returns the directory holding initdb and pg_ctl: from PATH,
// the newest /usr/lib/postgresql/*/bin, or /usr/local/bin.
func findPGBin() (string, error) {
	var cands []string
	if p, err := exec.LookPath("initdb"); err == nil {
		cands = append(cands, filepath.Dir(p))
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(versions, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(versions[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(versions[j])))
		return vi > vj
	})
	cands = append(cands, versions...)
	cands = append(cands, "/usr/local/bin")
	for _, d := range cands {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", errors.New("no initdb and pg_ctl in PATH, /usr/lib/postgresql/*/bin or /usr/local/bin")
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// StartPG initialises and starts a cluster in a new temporary directory.
// missing is set when PostgreSQL is not installed, err when it is but the
// cluster would not start. The caller stops it with Stop.
func StartPG(superuser string) (c *PGCluster, missing, err error) {
	bin, err := findPGBin()
	if err != nil {
		return nil, err, nil
	}
	c = &PGCluster{binDir: bin, User: superuser}
	parent := "" // os.TempDir()
	var uid, gid int
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as "postgres", in a
		// directory it owns under /tmp (TMPDIR may be under /root).
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, nil, fmt.Errorf("running as root and no user postgres to run PostgreSQL as: %w", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		c.asUser, parent = "postgres", "/tmp"
		if _, err := exec.LookPath("runuser"); err != nil {
			return nil, nil, fmt.Errorf("running as root and no runuser: %w", err)
		}
	}
	c.dir, err = os.MkdirTemp(parent, "mxcas-pg-")
	if err != nil {
		return nil, nil, err
	}
	if c.asUser != "" {
		if err := os.Chown(c.dir, uid, gid); err != nil {
			os.RemoveAll(c.dir)
			return nil, nil, err
		}
	}
	if err := c.run("initdb", "-D", c.data(), "-A", "trust", "-U", superuser, "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		os.RemoveAll(c.dir)
		return nil, nil, err
	}
	// A free port can be taken between our probe and the server's bind:
	// try a few.
	for try := 0; ; try++ {
		c.Port, err = freePort()
		if err != nil {
			break
		}
		opts := fmt.Sprintf("-k %s -p %d -h 127.0.0.1 -c fsync=off -c full_page_writes=off", c.dir, c.Port)
		err = c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "server.log"), "-o", opts, "-w", "-t", "60", "start")
		if err == nil || try == 2 {
			break
		}
	}
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		os.RemoveAll(c.dir)
		return nil, nil, fmt.Errorf("%w\nserver.log:\n%s", err, log)
	}
	c.started = true
	return c, nil, nil
}

func (c *PGCluster) data() string { return filepath.Join(c.dir, "data") }

// run runs one of the server programs, as c.asUser when set. Its output
// goes to a file, never a pipe: the postmaster that pg_ctl starts inherits
// it and would hold a pipe open for as long as it runs.
func (c *PGCluster) run(prog string, args ...string) error {
	path := filepath.Join(c.binDir, prog)
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	out, err := os.CreateTemp("", "mxcas-pg-cmd-")
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

// Stop stops the cluster and removes its directory.
func (c *PGCluster) Stop() error {
	if !c.started {
		return nil
	}
	c.started = false
	err := c.run("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "stop")
	if rmErr := os.RemoveAll(c.dir); err == nil {
		err = rmErr
	}
	return err
}

// DSN returns the URL of database db as the superuser.
func (c *PGCluster) DSN(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", c.User, c.Port, db)
}

// CreateDB creates a new, empty database named prefix_N and returns its
// name.
func (c *PGCluster) CreateDB(t testing.TB, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s_%d", prefix, c.dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatalf("create database: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return name
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
