package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/scanner"
)

// newLogger returns a slog logger writing to w: JSON when format is "json",
// or "auto" and w is not a terminal; text otherwise.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	jsonOpts := &slog.HandlerOptions{Level: lv, ReplaceAttr: durationText}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, jsonOpts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "auto":
		if isTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, jsonOpts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want auto, json or text", format)
}

// durationText writes a duration as the text handler does ("1.5s"),
// where slog's JSON handler writes its nanoseconds (1500000000).
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// setup is the start every cycle-running command shares: the flags for the
// config file and logging, and, once parsed, the loaded config, the logger
// and the stateDir lock.
type setup struct {
	configFile, logLevel, logFormat *string
	logTo                           io.Writer
}

func newSetup(fs *flag.FlagSet, logTo io.Writer, defaultFormat, formatHelp string) *setup {
	return &setup{
		configFile: fs.String("config", "imagebutler.yaml", "configuration `file`"),
		logLevel:   fs.String("log-level", "info", "log `level`: debug, info, warn or error"),
		logFormat:  fs.String("log-format", defaultFormat, "log `format`: "+formatHelp),
		logTo:      logTo,
	}
}

// load returns the config and logger, and takes the stateDir lock, which
// release gives back. Usage and config errors exit with code 2.
func (s *setup) load() (cfg *config.Config, log *slog.Logger, release func(), err error) {
	if log, err = newLogger(s.logTo, *s.logFormat, *s.logLevel); err != nil {
		return nil, nil, nil, &exitError{2, err}
	}
	if cfg, err = loadConfig(*s.configFile); err != nil {
		return nil, nil, nil, &exitError{2, err}
	}
	if release, err = scanner.LockStateDir(cfg.StateDir); err != nil {
		return nil, nil, nil, err
	}
	return cfg, log, release, nil
}
