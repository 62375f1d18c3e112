package media_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/media/mediatest"
)

// The crash test runs uploads in a child process (this test binary again,
// running TestCrashChild) and kills it with SIGKILL while uploads are in
// flight. Every upload the child acknowledged must survive, and the store
// must reopen healthy. Identifiers here are prefixed with crash so they do
// not collide with other files of package media_test.

const (
	crashDirEnv     = "MXCAS_CRASH_DIR"
	crashServer     = "crash.example"
	crashWriters    = 4
	crashAcksNeeded = 40
	crashMaxSize    = 1 << 20
	// crashBound is a safety net for a child that hangs, not a speed check.
	crashBound = 60 * time.Second
)

// crashRand returns the generator for stream tag of upload k.
func crashRand(k uint64, tag byte) *rand.ChaCha8 {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], k)
	seed[8] = tag
	return rand.NewChaCha8(seed)
}

// crashSize is the length of upload k: log-uniform in [1, crashMaxSize], so
// one-byte, one-chunk and many-chunk bodies all occur.
func crashSize(k uint64) int64 {
	r := rand.New(crashRand(k, 's'))
	return 1 + r.Int64N(1<<r.IntN(21)) // 1<<20 at most
}

// crashContentSeed: every fifth upload repeats the content of the one
// before it, often while that one is still in flight (deduplication).
func crashContentSeed(k uint64) uint64 {
	if k%5 == 4 {
		return k - 1
	}
	return k
}

// crashBody returns a reader over the content of upload k.
func crashBody(k uint64) io.Reader {
	s := crashContentSeed(k)
	return io.LimitReader(crashRand(s, 'c'), crashSize(s))
}

func crashID(k uint64) string { return fmt.Sprintf("crash%08d", k) }

// TestCrashChild is the child side of TestCrashDuringUploads; it does
// nothing unless started by it. It uploads until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestCrashDuringUploads")
	}
	st, err := media.Open(media.Options{Create: true, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var (
		next atomic.Uint64
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	for range crashWriters {
		wg.Go(func() {
			for {
				k := next.Add(1) - 1
				info := media.UploadInfo{
					MXC:  mustMXC(crashServer, crashID(k)),
					Size: crashSize(crashContentSeed(k)),
				}
				if k%3 == 0 {
					info.Size = -1 // chunked: length unknown
				}
				if _, err := st.Upload(context.Background(), info, crashBody(k)); err != nil {
					fmt.Fprintf(os.Stderr, "upload %d: %v\n", k, err)
					os.Exit(3)
				}
				line := fmt.Sprintf("ack %d %s\n", k, info.MXC.MediaID())
				mu.Lock()
				_, err := os.Stdout.WriteString(line)
				mu.Unlock()
				if err != nil {
					os.Exit(4)
				}
			}
		})
	}
	wg.Wait() // never: the parent kills us
}

func TestCrashDuringUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), crashBound)
	defer cancel()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	// Acks arrive on lines; the channel closes when the child's stdout does.
	lines := make(chan string)
	go func() {
		defer close(lines)
		br := bufio.NewReader(out)
		for {
			s, err := br.ReadString('\n')
			if err != nil {
				return // a fragment without "\n" is not an ack
			}
			lines <- s
		}
	}()
	acked := make(map[uint64]string) // k -> media ID
	record := func(line string) {
		t.Helper()
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "ack" {
			return // the test framework's own output
		}
		k, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil || f[2] != crashID(k) {
			t.Fatalf("child wrote a bad ack %q", line)
		}
		acked[k] = f[2]
	}
	for len(acked) < crashAcksNeeded {
		select {
		case line, ok := <-lines:
			if !ok {
				err := cmd.Wait()
				killed = true
				t.Fatalf("child exited after %d acks (%v); stderr:\n%s", len(acked), err, stderr.String())
			}
			record(line)
		case <-ctx.Done():
			t.Fatalf("only %d of %d acks after %v; child stderr:\n%s", len(acked), crashAcksNeeded, crashBound, stderr.String())
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed = true
	// Acks written before the kill are still in the pipe: they count too.
	for line := range lines {
		record(line)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("child exited cleanly; want killed")
	}

	stale, _ := os.ReadDir(filepath.Join(dir, "tmp")) // LOCK, and named temp files where O_TMPFILE is unavailable (anonymous ones vanish with the process)
	st, rep := mediatest.OpenHealthy(t, dir)
	defer st.Close()
	if rep.Media < len(acked) {
		t.Errorf("fsck counted %d media, want at least the %d acked", rep.Media, len(acked))
	}
	for k, id := range acked {
		want, err := io.ReadAll(crashBody(k))
		if err != nil {
			t.Fatal(err)
		}
		m := mustMXC(crashServer, id)
		r, rec, err := st.Open(m)
		if err != nil {
			t.Errorf("acked upload %d (%s) lost: %v", k, m, err)
			continue
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Errorf("read %s: %v", m, err)
			continue
		}
		if rec.Size != int64(len(want)) || !bytes.Equal(got, want) {
			t.Errorf("%s: got %d bytes (record says %d), want %d bytes of upload %d", m, len(got), rec.Size, len(want), k)
		}
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "tmp")); err != nil {
		t.Error(err)
	} else {
		for _, e := range entries {
			if e.Name() != "LOCK" {
				t.Errorf("stale temp file %s survived reopening", e.Name())
			}
		}
	}
	t.Logf("%d acked uploads survived the kill (%d entries in tmp before reopening; fsck: %d media, %d orphan chunks)",
		len(acked), len(stale), rep.Media, rep.Orphans)
}
