// Package config reads mxcas's TOML configuration into plain structs, fills
// defaults and validates it strictly: an unknown key or a bad value is an
// error naming the key and its line. It imports no other mxcas package;
// cmd/mxcas turns these structs into each component's options. It must
// never start anything or touch the data directory.
package config
