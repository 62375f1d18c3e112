package media_test

import (
	"os"
	"testing"

	"github.com/mxcas/mxcas/testkit"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testkit.StopSharedPG() // the cluster of the shared-index tests, if any started it
	os.Exit(code)
}
