package gitwriter

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/file"
)

// go-git's file:// transport runs git-upload-pack and, when the fetch stops
// reading its packfile early (the disk filled up while it was written),
// closes the session by waiting for git-upload-pack to exit, which is
// blocked writing the rest of the pack to a pipe nobody reads: the fetch
// never returns, whatever its context says. The transport installed here
// kills git-upload-pack instead when its pack was not read to the end.

var installFileTransport sync.Once

// useKillingFileTransport installs, once for the process, the file://
// transport whose upload-pack sessions end their process when closed early.
func useKillingFileTransport() {
	installFileTransport.Do(func() {
		client.InstallProtocol("file", killingTransport{file.DefaultClient})
	})
}

type killingTransport struct{ transport.Transport }

func (t killingTransport) NewUploadPackSession(ep *transport.Endpoint, auth transport.AuthMethod) (transport.UploadPackSession, error) {
	s, err := t.Transport.NewUploadPackSession(ep, auth)
	if err != nil {
		return nil, err
	}
	return killingSession{s}, nil
}

type killingSession struct{ transport.UploadPackSession }

func (s killingSession) UploadPack(ctx context.Context, req *packp.UploadPackRequest) (*packp.UploadPackResponse, error) {
	// The session reads git-upload-pack's output through a reader bound to
	// this context; a read after cancel fails at once, and go-git answers a
	// failed read by killing the process.
	ctx, cancel := context.WithCancel(ctx)
	resp, err := s.UploadPackSession.UploadPack(ctx, req)
	if err != nil {
		cancel()
		return resp, err
	}
	pack := &earlyCloser{resp: resp, cancel: cancel}
	out := packp.NewUploadPackResponseWithPackfile(req, pack)
	out.ShallowUpdate, out.ServerResponse = resp.ShallowUpdate, resp.ServerResponse
	return out, nil
}

// earlyCloser is an upload-pack response that, closed before its end,
// kills the process still writing it rather than wait for it.
type earlyCloser struct {
	resp   *packp.UploadPackResponse
	cancel context.CancelFunc
	ended  bool
}

func (r *earlyCloser) Read(p []byte) (int, error) {
	n, err := r.resp.Read(p)
	if errors.Is(err, io.EOF) {
		r.ended = true
	}
	return n, err
}

func (r *earlyCloser) Close() error {
	if !r.ended {
		r.cancel()
		// A read on the cancelled context fails (go-git then kills the
		// process) unless data was ready; reading on drains until it fails.
		buf := make([]byte, 32<<10)
		for {
			if _, err := r.resp.Read(buf); err != nil {
				break
			}
		}
	}
	err := r.resp.Close()
	r.cancel()
	return err
}
