// Package scanner runs imagebutler's cycle: for each configured git
// repository it syncs the working copy, reads the policies and markers,
// lists each ECR repository once (however many policies and repositories
// use it), selects a tag per policy, rewrites the markers, commits and pushes.
//
// ECR is read through its own API (DescribeImages), which gives tags,
// digest and push time in pages of up to 1,000 images.
package scanner
