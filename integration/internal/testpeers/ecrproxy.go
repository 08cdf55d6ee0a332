package testpeers

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
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
// It also adds to moto's answers what moto leaves out: the artifact media
// type of the images given one (SetArtifactType), as ECR's API documents
// it (ImageDetail.artifactMediaType, with imageManifestMediaType).
type ECRProxy struct {
	URL string
	srv *httptest.Server

	mu     sync.Mutex
	calls  []ECRCall
	faults []Fault
	// Always, when not Pass, answers every DescribeImages request so.
	always Fault
	types  map[string]string // digest → artifact media type
	scans  map[string]ScanSummary
	ops    map[string]int // requests by operation (X-Amz-Target's)
}

// ScanSummary is an image's scan as ECR's DescribeImages reports it
// (imageScanStatus and imageScanFindingsSummary); moto reports neither.
type ScanSummary struct {
	Status string           // COMPLETE, ACTIVE, IN_PROGRESS, ...
	Counts map[string]int32 // findingSeverityCounts
}

// SetScanSummary makes DescribeImages answers report the image of digest
// with scan s, as ECR does where scanning is on.
func (p *ECRProxy) SetScanSummary(digest string, s ScanSummary) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.scans == nil {
		p.scans = map[string]ScanSummary{}
	}
	p.scans[digest] = s
}

// Ops returns how many requests of each operation (DescribeImages,
// DescribeImageScanFindings, ...) went through, and forgets them.
func (p *ECRProxy) Ops() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := p.ops
	p.ops = nil
	return o
}

// SetArtifactType makes DescribeImages answers report the image of digest
// with artifactMediaType mediaType (a Helm chart's config type, say), as ECR
// reports an OCI artifact; moto reports no artifact type.
func (p *ECRProxy) SetArtifactType(digest, mediaType string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.types == nil {
		p.types = map[string]string{}
	}
	p.types[digest] = mediaType
}

// NewECRProxy starts a proxy in front of the moto endpoint.
func NewECRProxy(motoEndpoint string) *ECRProxy {
	target, _ := url.Parse(motoEndpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &ECRProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		p.mu.Lock()
		if p.ops == nil {
			p.ops = map[string]int{}
		}
		p.ops[target[strings.LastIndex(target, ".")+1:]]++
		p.mu.Unlock()
		if !strings.HasSuffix(target, ".DescribeImages") {
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
			p.mu.Lock()
			typed := len(p.types) > 0 || len(p.scans) > 0
			p.mu.Unlock()
			if !typed {
				rp.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			body := p.withArtifactTypes(rec.Body.Bytes())
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.Code)
			w.Write(body)
		}
	}))
	p.URL = p.srv.URL
	return p
}

// withArtifactTypes adds the artifact media types set to a DescribeImages
// answer's image details; anything it cannot read is returned as it was.
func (p *ECRProxy) withArtifactTypes(body []byte) []byte {
	var out map[string]any
	if json.Unmarshal(body, &out) != nil {
		return body
	}
	details, _ := out["imageDetails"].([]any)
	p.mu.Lock()
	for _, d := range details {
		detail, _ := d.(map[string]any)
		digest, _ := detail["imageDigest"].(string)
		if t, ok := p.types[digest]; ok && detail != nil {
			detail["artifactMediaType"] = t
			detail["imageManifestMediaType"] = "application/vnd.oci.image.manifest.v1+json"
		}
		if s, ok := p.scans[digest]; ok && detail != nil {
			detail["imageScanStatus"] = map[string]any{"status": s.Status, "description": "as the test set it"}
			if s.Counts != nil {
				detail["imageScanFindingsSummary"] = map[string]any{"findingSeverityCounts": s.Counts,
					"imageScanCompletedAt": float64(time.Now().Unix()), "vulnerabilitySourceUpdatedAt": float64(time.Now().Unix())}
			}
		}
	}
	p.mu.Unlock()
	changed, err := json.Marshal(out)
	if err != nil {
		return body
	}
	return changed
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
