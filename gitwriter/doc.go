// Package gitwriter is the butler's side of imagebutler: it keeps a working
// copy of each git repository, finds the annotated Kubernetes objects and the
// $imagepolicy markers in it, rewrites the marked values, commits and pushes.
//
// A marker is a YAML comment holding a JSON object with the key
// "$imagepolicy", on the line of a scalar value (or on the comment line
// directly above a sequence item):
//
//	image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/lrl_falcon_bartender:qa-sha-06c5953 # {"$imagepolicy": "falcon-qa:my-policy-bartender"}
//
// "ns:policy" sets <image>:<tag>, "ns:policy:tag" the tag, "ns:policy:name"
// the image name and "ns:policy:digest" the digest. Only the bytes of the
// value change; every other byte of the file is kept.
package gitwriter
