// Package module finds this Go module's source tree, which the bench
// commands build their binaries from and read test data in.
package module

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Root returns the directory of this module's go.mod, as go env GOMOD
// reports it from the current directory.
func Root() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the mxcas module")
	}
	return filepath.Dir(gomod), nil
}
