// Package integration runs imagebutler against real peers: a moto server
// for ECR and git http-backend for git, each a process of its own. Without
// moto the tests skip with the reason, except under CI=true, where they fail.
package integration
