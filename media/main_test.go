package media_test

import (
	"os"
	"testing"

	"github.com/mxcas/mxcas/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.RunWithPG(m)) }
