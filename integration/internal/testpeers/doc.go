// Package testpeers starts the real peers imagebutler talks to, on
// loopback, for the integration tests and the demo: a moto server standing
// in for ECR, and git's own http-backend serving bare repositories.
package testpeers
