// Package example holds the seed guide's Deployment, which the README's
// "Run locally" steps, the demo and the integration tests put in a git
// repository for imagebutler to update.
package example

import _ "embed"

// Deployment is apps/bartender/deployment.yaml: the seed guide's
// Deployment with the simple annotation and its $imagepolicy marker,
// pointing at the tag qa-sha-06c5953.
//
//go:embed apps/bartender/deployment.yaml
var Deployment string
