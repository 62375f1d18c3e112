package config

import (
	"fmt"
	"log/slog"
	"strings"
)

// logLevels are the values of [server] log_level.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// Level returns log_level as a slog.Level (info when it is not one of
// the four names; Validate refuses those).
func (s Server) Level() slog.Level { return logLevels[strings.ToLower(s.LogLevel)] }

// validateLogLevel checks that log_level names a level.
func (s Server) validateLogLevel() error {
	if _, ok := logLevels[strings.ToLower(s.LogLevel)]; !ok {
		return bad(fmt.Sprintf("want debug, info, warn or error, got %q", s.LogLevel), "server", "log_level")
	}
	return nil
}
