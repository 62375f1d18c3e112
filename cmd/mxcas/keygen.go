package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"os"

	"github.com/mxcas/mxcas/matrix"
)

// cmdKeygen writes a new signing key in Synapse's file format. It never
// overwrites an existing file: a homeserver's key is its identity.
func cmdKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mxcas keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version", "", "key version (default: a_ and 4 random hex characters, as Synapse makes them)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: mxcas keygen [-version V] FILE")
		return 2
	}
	v := *version
	if v == "" {
		var b [2]byte
		rand.Read(b[:])
		v = "a_" + hex.EncodeToString(b[:])
	}
	k, err := matrix.GenerateSigningKey(v)
	if err != nil {
		fmt.Fprintln(stderr, "mxcas keygen:", err)
		return 2
	}
	path := fs.Arg(0)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, iofs.ErrExist) {
		fmt.Fprintf(stderr, "mxcas keygen: %s exists; a signing key is a server's identity, so it is never overwritten\n", path)
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "mxcas keygen:", err)
		return 1
	}
	_, err = f.Write(k.MarshalFile())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		fmt.Fprintln(stderr, "mxcas keygen:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s: key %s\n", path, k.ID)
	return 0
}
