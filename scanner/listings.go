package scanner

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/imagebutler/imagebutler/policy"
)

// Listings: each ECR repository listed once per cycle, and followed
// across cycles.

// listings lists each ECR repository at most once per cycle, whichever
// repositories and policies ask for it. A listing runs under the cycle's
// context, bounded by the longest repository timeout, so that one
// repository's timeout does not fail another's policies; each asker waits
// for it only as long as its own context allows.
type listings struct {
	ctx      context.Context
	timeout  time.Duration
	lister   Lister
	metrics  *Metrics
	lineages *lineages
	mu       sync.Mutex
	m        map[policy.ImageRef]*listing
}

// lineages follows each ECR repository's listings across cycles (a hash
// per repository, no image), so that selection knows a listing for the
// last one, or for it plus new images.
type lineages struct {
	mu sync.Mutex
	m  map[policy.ImageRef]*policy.Lineage
}

// next returns images, ref's listing now, as a Listing of ref's lineage.
func (ls *lineages) next(ref policy.ImageRef, images []policy.Image) policy.Listing {
	ls.mu.Lock()
	l, ok := ls.m[ref]
	if !ok {
		l = &policy.Lineage{}
		ls.m[ref] = l
	}
	ls.mu.Unlock()
	return l.Next(images)
}

// keep drops the lineages of the ECR repositories that the cycle whose
// listings are done did not list.
func (ls *lineages) keep(done *listings) {
	done.mu.Lock()
	defer done.mu.Unlock()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for ref := range ls.m {
		if _, listed := done.m[ref]; !listed {
			delete(ls.m, ref)
		}
	}
}

type listing struct {
	done chan struct{}
	l    policy.Listing
	err  error
}

func (l *listings) list(ctx context.Context, ref policy.ImageRef) (policy.Listing, error) {
	l.mu.Lock()
	e, ok := l.m[ref]
	if !ok {
		e = &listing{done: make(chan struct{})}
		l.m[ref] = e
		go func() {
			defer close(e.done)
			lctx, cancel := context.WithTimeout(l.ctx, l.timeout)
			defer cancel()
			var images []policy.Image
			if images, e.err = l.lister.List(lctx, ref); e.err == nil {
				e.l = l.lineages.next(ref, images)
			}
		}()
	}
	l.mu.Unlock()
	select {
	case <-e.done:
		return e.l, e.err
	case <-ctx.Done():
		return policy.Listing{}, fmt.Errorf("waiting for the listing of %s: %w", ref, ctx.Err())
	}
}
