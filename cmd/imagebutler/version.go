package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// buildInfo is what the binary knows of its own build.
type buildInfo struct {
	Version, Commit, GoVersion, Platform string
}

// readBuildInfo returns the stamped version and commit, falling back to
// what the Go toolchain recorded (the module version of `go install
// ...@v1.2.3`, the VCS revision of a build in a checkout).
func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Commit: commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if b.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	if b.Commit == "unknown" {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			b.Commit = rev
			if modified == "true" {
				b.Commit += "-dirty"
			}
		}
	}
	return b
}

// String is the line `imagebutler version` prints.
func (b buildInfo) String() string {
	return fmt.Sprintf("imagebutler %s (commit %s, %s, %s)", b.Version, b.Commit, b.GoVersion, b.Platform)
}
