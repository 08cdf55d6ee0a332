package config

import "testing"

func TestKMSKeyARN(t *testing.T) {
	for _, tt := range []struct {
		key, arn string
		ok       bool
	}{
		{"awskms:///arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", true},
		{"arn:aws:kms:us-east-2:123456789012:alias/release-signing", "arn:aws:kms:us-east-2:123456789012:alias/release-signing", true},
		{"arn:aws-cn:kms:cn-north-1:123456789012:key/abcd", "arn:aws-cn:kms:cn-north-1:123456789012:key/abcd", true},
		{"awskms://kms.us-east-2.amazonaws.com/1234abcd", "", false},
		{"arn:aws:kms:us-east-2:1234:key/abcd", "", false},
		{"keys/cosign.pub", "", false},
		{"arn:aws:kms:us-east-2:123456789012:key/abcd\nx", "", false},
	} {
		arn, ok := KMSKeyARN(tt.key)
		if ok != tt.ok || (ok && arn != tt.arn) {
			t.Errorf("KMSKeyARN(%q) = %q, %v; want %q, %v", tt.key, arn, ok, tt.arn, tt.ok)
		}
	}
}
