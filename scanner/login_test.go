package scanner

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/policy"
)

// loginECR hands out authorization tokens and counts them.
type loginECR struct {
	pagedECR
	token   string
	expires time.Duration
	calls   int
}

func (f *loginECR) GetAuthorizationToken(context.Context, *ecr.GetAuthorizationTokenInput, ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	f.calls++
	at := time.Now().Add(f.expires)
	return &ecr.GetAuthorizationTokenOutput{AuthorizationData: []types.AuthorizationData{{
		AuthorizationToken: aws.String(f.token), ExpiresAt: &at}}}, nil
}

func TestRegistryLogin(t *testing.T) {
	ref := policy.ImageRef{Account: "123456789012", Region: "us-east-2", Repository: "team/app"}
	tests := []struct {
		name    string
		token   string
		expires time.Duration
		// wantCalls is GetAuthorizationToken's calls for two logins.
		wantCalls int
		wantErr   string
	}{
		{"kept for its twelve hours", base64.StdEncoding.EncodeToString([]byte("AWS:secret-password")), 12 * time.Hour, 1, ""},
		{"renewed near its end", base64.StdEncoding.EncodeToString([]byte("AWS:secret-password")), 10 * time.Minute, 2, ""},
		{"not base64", "AWS:secret-password", 12 * time.Hour, 2, "the token is not base64 of user:password"},
		{"no password", base64.StdEncoding.EncodeToString([]byte("AWS")), 12 * time.Hour, 2, "the token is not base64 of user:password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &loginECR{token: tt.token, expires: tt.expires}
			e := newECR(config.AWS{}, nil, func(string, string) ecr.DescribeImagesAPIClient { return f })
			for range 2 {
				user, password, err := e.RegistryLogin(context.Background(), ref)
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("RegistryLogin = %v, want %q", err, tt.wantErr)
					}
					if strings.Contains(err.Error(), "secret-password") {
						t.Fatalf("the error shows the token: %v", err)
					}
					continue
				}
				if err != nil || user != "AWS" || password != "secret-password" {
					t.Fatalf("RegistryLogin = %q, %q, %v", user, password, err)
				}
			}
			if f.calls != tt.wantCalls {
				t.Errorf("GetAuthorizationToken called %d times, want %d", f.calls, tt.wantCalls)
			}
		})
	}
}
