package main_test

import (
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/mxcas/mxcas/testkit"
)

// pgCluster is the private PostgreSQL cluster of this test binary: started
// by the first test that needs it, stopped by TestMain. Its superuser is
// "synapse"; authentication is "trust" on 127.0.0.1.
type pgCluster = testkit.PGCluster

const pgUser = "synapse"

// needPG returns the shared cluster, starting it on first use. Without
// PostgreSQL the test fails when testkit.PGRequired, else it is skipped.
func needPG(t *testing.T) *pgCluster {
	t.Helper()
	return testkit.SharedPG(t, pgUser)
}

// stopPG stops the shared cluster, when one was started.
func stopPG() { testkit.StopSharedPG() }

// TestPGCluster checks the test cluster itself: it starts, takes a
// connection and runs the Synapse schema.
func TestPGCluster(t *testing.T) {
	c := needPG(t)
	db := openPGSynapse(t, c)
	var n int
	if err := db.db.QueryRow("SELECT count(*) FROM local_media_repository").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("fresh database has %d media rows", n)
	}
	var enc string
	if err := db.db.QueryRow("SHOW server_encoding").Scan(&enc); err != nil {
		t.Fatal(err)
	}
	if enc != "UTF8" {
		t.Fatalf("server_encoding = %q, want UTF8", enc)
	}
}
