package config

import (
	"encoding"
	"fmt"
	"reflect"
)

// Change is one key whose value differs between two configurations.
type Change struct {
	// Key names the value as the file does: "server.listen",
	// "homeserver[1].admins", "thumbnails.sizes" (a list whose length
	// changed is one change).
	Key string
	// Old and New are the two values. They may hold secrets (static
	// tokens): log Key, not them.
	Old, New any
}

// String is "key: old != new", for tests and messages without secrets.
func (c Change) String() string { return fmt.Sprintf("%s: %v != %v", c.Key, c.Old, c.New) }

// Diff returns every value that differs between old and new, key by key
// in the order of the file's structure, walking tables and lists of
// tables so the key says where. An empty list or table equals an unset
// one; Source is not compared.
func Diff(old, new Config) []Change {
	return diffKeys("", reflect.ValueOf(old), reflect.ValueOf(new), nil)
}

func diffKeys(key string, a, b reflect.Value, diffs []Change) []Change {
	switch {
	case isTable(a.Type()):
		for i := 0; i < a.NumField(); i++ {
			if name := a.Type().Field(i).Tag.Get("toml"); name != "" && name != "-" {
				diffs = diffKeys(joinKey(key, name), a.Field(i), b.Field(i), diffs)
			}
		}
		return diffs
	case a.Kind() == reflect.Slice && a.Type().Elem().Kind() == reflect.Struct && a.Len() == b.Len():
		for i := 0; i < a.Len(); i++ {
			diffs = diffKeys(fmt.Sprintf("%s[%d]", key, i), a.Index(i), b.Index(i), diffs)
		}
		return diffs
	case (a.Kind() == reflect.Slice || a.Kind() == reflect.Map) && a.Len() == 0 && b.Len() == 0:
		return diffs
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		diffs = append(diffs, Change{Key: key, Old: a.Interface(), New: b.Interface()})
	}
	return diffs
}

// isTable reports whether t is decoded from a TOML table key by key (a
// struct that does not decode itself from text, as Duration does).
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}
