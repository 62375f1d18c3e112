package index

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleReader is the kvReader of a Pebble DB or snapshot.
type pebbleReader struct{ r pebble.Reader }

var _ kvReader = pebbleReader{}

func (p pebbleReader) get(key []byte, fn func(v []byte) error) error {
	v, closer, err := p.r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("index: get: %w", err)
	}
	defer closer.Close()
	return fn(v)
}

func (p pebbleReader) scan(lower, upper []byte, fn func(k, v []byte) error) error {
	it, err := p.r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("index: scan: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err == nil {
			err = fn(it.Key(), v)
		}
		if err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("index: scan: %w", err)
	}
	return nil
}

func (p pebbleReader) scanLazy(lower, upper []byte, fn func(k []byte, value func() ([]byte, error)) error) error {
	it, err := p.r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("index: scan: %w", err)
	}
	value := func() ([]byte, error) { return it.ValueAndErr() }
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key(), value); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("index: scan: %w", err)
	}
	return nil
}

// counter reads the value usageMerger folds the added Usages into.
func (p pebbleReader) counter(key []byte) (Usage, error) {
	var u Usage
	err := p.get(key, func(v []byte) (err error) {
		u, err = decodeUsage(v)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return Usage{}, nil
	}
	return u, err
}

func (p pebbleReader) scanCounters(lower, upper []byte, fn func(k []byte, u Usage) error) error {
	return p.scan(lower, upper, func(k, v []byte) error {
		u, err := decodeUsage(v)
		if err != nil {
			return err
		}
		return fn(k, u)
	})
}
