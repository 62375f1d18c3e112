package main

import (
	"errors"
	"testing"
)

// failingRows yields n rows, then stops with err, as a database cursor does
// when a read fails part way through a result.
type failingRows struct {
	n   int
	err error
}

func (f *failingRows) Next() bool {
	if f.n == 0 {
		return false
	}
	f.n--
	return true
}

func (f *failingRows) Scan(dest ...any) error { return nil }
func (f *failingRows) Err() error             { return f.err }

// TestAppendRowsFailsOnCursorError: rows read before a failing cursor
// stops are not returned as if they were all; the import must not go on
// with a silently shorter list.
func TestAppendRowsFailsOnCursorError(t *testing.T) {
	broken := errors.New("disk I/O error")
	scan := func(func(...any) error) (row, error) { return row{}, nil }
	rows, err := appendRows(nil, &failingRows{n: 3, err: broken}, scan)
	if !errors.Is(err, broken) {
		t.Fatalf("appendRows = %d rows, err %v; want the cursor's error", len(rows), err)
	}
	rows, err = appendRows(nil, &failingRows{n: 3}, scan)
	if err != nil || len(rows) != 3 {
		t.Fatalf("appendRows of a whole result = %d rows, err %v; want 3, nil", len(rows), err)
	}
}
