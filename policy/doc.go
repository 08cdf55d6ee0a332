// Package policy turns the app.lilly.com/flux.* annotations of a Kubernetes
// object into image policies, and picks each policy's tag from a list of
// ECR images.
//
// An object takes part only when it carries
//
//	app.lilly.com/flux.automated: "true"
//
// The simple form names one policy per annotation:
//
//	app.lilly.com/flux.simple.<policy-name>: "<account>;<ecr-repo>;<filter>"
//
// where <account> is a 12-digit AWS account id or a registry host such as
// 283234040926.dkr.ecr.us-east-2.amazonaws.com, and <filter> is
// glob:<pattern> (the default without a prefix), regexp:<re> or
// semver:<range>. Glob and regexp pick the most recently pushed tag; semver
// the highest version in range. A policy's id is "<namespace>:<policy-name>",
// the string that $imagepolicy markers name.
//
// The package does no I/O: callers list ECR and pass the images to
// Policy.Select.
package policy
