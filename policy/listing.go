package policy

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Listing is the images of one ECR repository, oldest first, with what is
// known of where they came from: a Listing made by Lineage.Next knows
// whether it is the repository's last listing unchanged, or that listing
// followed by new images, so SelectMemo judges only what is new. Its
// Images must not be modified once it is made.
type Listing struct {
	Images []Image
	id     uint64 // 0: unknown provenance
	base   uint64 // the listing whose images are Images[:baseLen], unchanged; 0: none
	// baseLen is how many leading images are those of base.
	baseLen int
}

// listingIDs numbers listings across all lineages, so an id names one
// content whichever repository it came from.
var listingIDs atomic.Uint64

// Lineage follows the listings of one ECR repository from one call of Next
// to the next. It keeps no image: only the last listing's id, length and a
// 64-bit hash of its contents (randomly seeded per Lineage, so the chance
// that a changed listing passes for the last one is about 2^-64). It is
// safe for concurrent use.
type Lineage struct {
	mu   sync.Mutex
	seed maphash.Seed
	last uint64 // id of the last listing; 0 before the first
	n    int    // its number of images
	sum  uint64 // the hash of its images
	// warmth is what warmImages returned, unused.
	warmth byte
}

// Next returns images as a Listing, knowing it for the last listing when
// every image (tags, digest and push time) is as it was, or for the last
// listing followed by new images when the last listing's images lead it
// unchanged. It reads every image once (hashing it) and copies nothing.
func (l *Lineage) Next(images []Image) Listing {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == 0 {
		l.seed = maphash.MakeSeed()
	}
	var h maphash.Hash
	h.SetSeed(l.seed)
	var prefix uint64
	// A block at a time, its strings read ahead (warmImages) so that their
	// cache misses overlap: a listing sorted after decoding has them all
	// over memory.
	for start := 0; start < len(images); start += warmBlock {
		block := images[start:min(start+warmBlock, len(images))]
		l.warmth ^= warmImages(block)
		for i := range block {
			if start+i == l.n {
				prefix = h.Sum64()
			}
			writeImage(&h, &block[i])
		}
	}
	sum := h.Sum64()
	if len(images) == l.n {
		prefix = sum
	}
	out := Listing{Images: images}
	switch {
	case l.last != 0 && len(images) == l.n && sum == l.sum:
		out.id = l.last
		return out
	case l.last != 0 && len(images) > l.n && prefix == l.sum:
		out.base, out.baseLen = l.last, l.n
	}
	out.id = listingIDs.Add(1)
	l.last, l.n, l.sum = out.id, len(images), sum
	return out
}

// warmImages reads the first and last byte of each tag and of the digest
// of every image, as warm does for the judging loops (the hash then finds them in
// cache).
func warmImages(images []Image) (sum byte) {
	for i := range images {
		for _, t := range images[i].Tags {
			if len(t) > 0 {
				sum ^= t[0] ^ t[len(t)-1]
			}
		}
		if d := images[i].Digest; len(d) > 0 {
			sum ^= d[0] ^ d[len(d)-1]
		}
	}
	return sum
}

// writeImage writes what selection reads of img to h, each field with its
// length so that no two images write the same bytes.
func writeImage(h *maphash.Hash, img *Image) {
	var b [binary.MaxVarintLen64]byte
	writeInt := func(v int64) { h.Write(binary.AppendVarint(b[:0], v)) }
	writeInt(int64(len(img.Tags)))
	for _, t := range img.Tags {
		writeInt(int64(len(t)))
		h.WriteString(t)
	}
	writeInt(int64(len(img.Digest)))
	h.WriteString(img.Digest)
	writeInt(img.PushedAt.Unix())
	writeInt(int64(img.PushedAt.Nanosecond()))
}
