package testpeers

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ECRCall is one DescribeImages request that went through an ECRProxy.
type ECRCall struct {
	RegistryID string
	Repository string
	AccessKey  string // the access key id that signed the request
}

// Fault is what an ECRProxy answers to a DescribeImages request instead of
// passing it to moto.
type Fault int

// Faults an ECRProxy can inject.
const (
	Pass     Fault = iota // pass the request to moto
	Throttle              // HTTP 400 ThrottlingException, the AWS JSON error shape
	Fail500               // HTTP 500 InternalServerError
	Hang                  // answer nothing for 10 s
)

// ECRProxy stands between the client and moto: it records every
// DescribeImages request and answers the first ones with the faults queued.
type ECRProxy struct {
	URL string
	srv *httptest.Server

	mu     sync.Mutex
	calls  []ECRCall
	faults []Fault
	// Always, when not Pass, answers every DescribeImages request so.
	always Fault
}

// NewECRProxy starts a proxy in front of the moto endpoint.
func NewECRProxy(motoEndpoint string) *ECRProxy {
	target, _ := url.Parse(motoEndpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &ECRProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".DescribeImages") {
			rp.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var in struct {
			RegistryID     string `json:"registryId"`
			RepositoryName string `json:"repositoryName"`
		}
		json.Unmarshal(body, &in)
		call := ECRCall{RegistryID: in.RegistryID, Repository: in.RepositoryName, AccessKey: accessKey(r.Header.Get("Authorization"))}
		p.mu.Lock()
		p.calls = append(p.calls, call)
		fault := p.always
		if fault == Pass && len(p.faults) > 0 {
			fault, p.faults = p.faults[0], p.faults[1:]
		}
		p.mu.Unlock()
		switch fault {
		case Throttle:
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.Header().Set("X-Amzn-ErrorType", "ThrottlingException")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"ThrottlingException","message":"Rate exceeded"}`)
		case Fail500:
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"__type":"ServerException","message":"internal error"}`)
		case Hang:
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	p.URL = p.srv.URL
	return p
}

// Close stops the proxy.
func (p *ECRProxy) Close() { p.srv.Close() }

// Inject queues faults for the next DescribeImages requests.
func (p *ECRProxy) Inject(faults ...Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, faults...)
}

// Always answers every DescribeImages request with f (Pass to stop).
func (p *ECRProxy) Always(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.always = f
}

// Calls returns the DescribeImages requests seen so far and forgets them.
func (p *ECRProxy) Calls() []ECRCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.calls
	p.calls = nil
	return c
}

// accessKey reads the access key id from a SigV4 Authorization header.
func accessKey(auth string) string {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(rest, "/")
	return key
}
