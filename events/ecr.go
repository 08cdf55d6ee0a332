package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/imagebutler/imagebutler/policy"
	"github.com/imagebutler/imagebutler/scanner"
)

// ErrNotPush marks an event imagebutler understands but has nothing to do
// for: another ECR action (a delete), a push that failed, or a push by
// digest alone (no tag, so no policy can pick it).
var ErrNotPush = errors.New("not a successful push of a tag")

// ecrEvent is the EventBridge envelope of an "ECR Image Action" event, as
// EventBridge delivers it to an SQS queue (the message body is the event).
type ecrEvent struct {
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Account    string          `json:"account"`
	Region     string          `json:"region"`
	Time       json.RawMessage `json:"time"`
	Detail     struct {
		ActionType     string   `json:"action-type"`
		Result         string   `json:"result"`
		RepositoryName string   `json:"repository-name"`
		ImageTag       string   `json:"image-tag"`
		ImageDigest    string   `json:"image-digest"`
		ImageTags      []string `json:"image-tags"`  // scan events
		ScanStatus     string   `json:"scan-status"` // scan events
	} `json:"detail"`
}

// The events ParseECR reads: a push, and a scan that finished (basic
// scanning's, or Amazon Inspector's enhanced scanning).
const (
	detailPush      = "ECR Image Action"
	detailScan      = "ECR Image Scan"
	detailInspector = "Inspector2 Scan"
)

// ParseECR reads an EventBridge "ECR Image Action" event, or a scan's ("ECR
// Image Scan", "Inspector2 Scan"). A successful push of a tag is returned as
// a Push, and so is a scan of an image (its digest, and its first tag): a
// pass then judges the gates again. Any other ECR image action is ErrNotPush;
// anything else (not JSON, another source, fields that break ECR's rules)
// is an error that says which field is wrong, without echoing the body.
// defaultAccount stands in for an event that names no account: AWS always
// names it, moto's EventBridge leaves it out; the queue's account is where
// the rule that delivered such an event lives.
func ParseECR(body []byte, defaultAccount string) (scanner.Push, error) {
	var e struct {
		ecrEvent
		Type string `json:"Type"` // an SNS envelope's
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&e); err != nil {
		return scanner.Push{}, errors.New("not a JSON event")
	}
	if e.Source == "" && e.Type == "Notification" {
		return scanner.Push{}, errors.New("an SNS notification, not an EventBridge event: make the queue the rule's target (or turn on raw message delivery)")
	}
	scan := e.Source == "aws.ecr" && e.DetailType == detailScan || e.Source == "aws.inspector2" && e.DetailType == detailInspector
	if !scan && (e.Source != "aws.ecr" || e.DetailType != detailPush) {
		return scanner.Push{}, fmt.Errorf("source %s, detail-type %s: not an ECR image action or scan",
			strconv.QuoteToASCII(clipField(e.Source)), strconv.QuoteToASCII(clipField(e.DetailType)))
	}
	d := e.Detail
	if e.Account == "" {
		e.Account = defaultAccount
	}
	if arn, ok := strings.CutPrefix(d.RepositoryName, "arn:"); ok {
		// Inspector names the repository by its ARN:
		// arn:aws:ecr:<region>:<account>:repository/<name>.
		parts := strings.SplitN(arn, ":", 5)
		if len(parts) == 5 && parts[1] == "ecr" && strings.HasPrefix(parts[4], "repository/") {
			e.Region, e.Account, d.RepositoryName = parts[2], parts[3], strings.TrimPrefix(parts[4], "repository/")
		}
	}
	if scan && len(d.ImageTags) > 0 {
		d.ImageTag = d.ImageTags[0]
	}
	ref, err := policy.ParseImageRef(fmt.Sprintf("%s.dkr.ecr.%s.amazonaws.com/%s", e.Account, e.Region, d.RepositoryName))
	if err != nil {
		return scanner.Push{}, fmt.Errorf("account %s, region %s, repository %s: not an ECR repository",
			strconv.QuoteToASCII(clipField(e.Account)), strconv.QuoteToASCII(clipField(e.Region)), strconv.QuoteToASCII(clipField(d.RepositoryName)))
	}
	p := scanner.Push{Ref: ref, Tag: d.ImageTag, Digest: d.ImageDigest}
	if p.Time, err = eventTime(e.Time); err != nil {
		return scanner.Push{}, err
	}
	if p.Tag != "" && !scanner.ValidTag(p.Tag) {
		return scanner.Push{}, fmt.Errorf("image-tag %s breaks ECR's rules for tags", strconv.QuoteToASCII(clipField(p.Tag)))
	}
	if p.Digest != "" && !scanner.ValidDigest(p.Digest) {
		return scanner.Push{}, fmt.Errorf("image-digest %s is not a sha256 digest", strconv.QuoteToASCII(clipField(p.Digest)))
	}
	if scan {
		if p.Digest == "" {
			return p, fmt.Errorf("%w (a scan event without image-digest)", ErrNotPush)
		}
		return p, nil
	}
	if d.ActionType != "PUSH" || d.Result != "SUCCESS" || p.Tag == "" {
		return p, fmt.Errorf("%w (action-type %s, result %s, image-tag %q)", ErrNotPush,
			strconv.QuoteToASCII(clipField(d.ActionType)), strconv.QuoteToASCII(clipField(d.Result)), p.Tag)
	}
	return p, nil
}

// eventTime reads the event's time: RFC 3339 as EventBridge writes it, or
// Unix seconds as moto's EventBridge does. Absent is zero.
func eventTime(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("time %s is not an RFC 3339 time", strconv.QuoteToASCII(clipField(s)))
		}
		return t, nil
	}
	var sec float64
	if err := json.Unmarshal(raw, &sec); err != nil || math.IsNaN(sec) || sec < 0 || sec > 1e11 {
		return time.Time{}, errors.New("time is neither an RFC 3339 time nor Unix seconds")
	}
	whole, frac := math.Modf(sec)
	return time.Unix(int64(whole), int64(frac*1e9)).UTC(), nil
}

// clipField cuts a field echoed in an error to 64 bytes: a poison message
// cannot flood the log.
func clipField(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "..."
}
