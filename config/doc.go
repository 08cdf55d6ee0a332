// Package config loads and validates the imagebutler configuration file.
//
// The file is YAML. Unknown keys are rejected, defaults are applied, and
// every problem found is reported at once, each naming the file and the
// field path, for example:
//
//	imagebutler.yaml: repositories[1].branch: must not be empty
//
// Load returns a *Config that later packages may trust without checking
// again.
package config
