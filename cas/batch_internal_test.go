package cas

import "testing"

// TestCommitClearsRenameMarks: once a batch's names are durable, later
// batches reusing its chunks must not pay another sync for them, and the
// marks must not pile up for the life of the process.
func TestCommitClearsRenameMarks(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := s.NewBatch()
	for _, c := range []string{"a", "b", "c"} {
		if _, err := b.Put(Sum([]byte(c)), []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.renamed); n != 0 {
		t.Errorf("after Commit, %d chunks still marked as not yet durable", n)
	}
	again := s.NewBatch()
	if _, err := again.Put(Sum([]byte("a")), []byte("a")); err != nil {
		t.Fatal(err)
	}
	if again.needSync {
		t.Error("a batch reusing a durable chunk asks for a sync")
	}
	again.Abort()
}
