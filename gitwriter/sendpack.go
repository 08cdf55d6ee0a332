package gitwriter

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
)

// The butler pushes its commits itself, through go-git's transport, rather
// than with go-git's Push: a push sends exactly the objects the butler's
// commit made (its blobs, the trees on the paths to them, the commit), which
// are all the remote lacks, since the commit's parent is the remote head it
// was made on. go-git's Push instead walks every tree the remote already
// has to work that out, which costs the whole tree each push and fails on a
// folder deeper than its walks allow (1,024 levels).

// errRemoteMoved is a push refused before sending: the remote branch no
// longer points where the push expects it to.
var errRemoteMoved = errors.New("the remote branch moved")

// sendPack points ref on the remote at new, only while it still points at
// old (zero: only while it does not exist), sending objs in one pack; a
// zero new deletes ref. It is a compare-and-swap twice over: old is checked
// against the remote's advertisement before anything is sent, and the
// command names old, which the server checks again under its ref lock.
func (c *Checkout) sendPack(ctx context.Context, ref plumbing.ReferenceName, old, new plumbing.Hash, objs []plumbing.Hash) (err error) {
	ep, err := transport.NewEndpoint(c.url)
	if err != nil {
		return err
	}
	tr, err := client.NewClient(ep)
	if err != nil {
		return err
	}
	sess, err := tr.NewReceivePackSession(ep, c.auth)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := sess.Close(); err == nil {
			err = cerr
		}
	}()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return err
	}
	refs, err := ar.AllReferences()
	if err != nil {
		return err
	}
	var at plumbing.Hash
	if r, err := refs.Reference(ref); err == nil {
		at = r.Hash()
	}
	switch {
	case at == new:
		return nil // already there
	case at != old:
		return fmt.Errorf("%w: %s is at %s there, not at %s", errRemoteMoved, ref.Short(), short(at), short(old))
	case new.IsZero() && !ar.Capabilities.Supports(capability.DeleteRefs):
		return errors.New("the remote does not take deletions")
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	req.Commands = []*packp.Command{{Name: ref, Old: old, New: new}}
	done := make(chan error, 1)
	if new.IsZero() {
		close(done)
	} else {
		cfg, err := c.git.Storer.Config()
		if err != nil {
			return err
		}
		rd, wr := io.Pipe()
		req.Packfile = rd
		go func() {
			_, err := packfile.NewEncoder(wr, c.git.Storer, !ar.Capabilities.Supports(capability.OFSDelta)).Encode(objs, cfg.Pack.Window)
			done <- wr.CloseWithError(err)
		}()
		defer rd.Close()
	}
	rs, err := sess.ReceivePack(ctx, req)
	if err != nil {
		return err
	}
	if err := <-done; err != nil {
		return err
	}
	if rs != nil {
		if err := rs.Error(); err != nil {
			return err
		}
	}
	// The remote-tracking branch follows, as after a fetch.
	if branch := ref.Short(); ref.IsBranch() {
		tracking := remoteRef(branch)
		if new.IsZero() {
			return c.git.Storer.RemoveReference(tracking)
		}
		return c.git.Storer.SetReference(plumbing.NewHashReference(tracking, new))
	}
	return nil
}

// short is the first 12 hex digits of h, or "nothing" for the zero hash.
func short(h plumbing.Hash) string {
	if h.IsZero() {
		return "nothing"
	}
	return h.String()[:12]
}
