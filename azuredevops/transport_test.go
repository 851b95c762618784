package azuredevops

import (
	"errors"
	"testing"

	"github.com/approvalbot/approvalbot/approvals"
)

// The job token travels only over https, loopback hosts excepted, and an
// allowed host may pin its port.
func TestPlanURLTransport(t *testing.T) {
	t.Parallel()
	hosts := newHostList([]string{"dev.azure.com", "tfs.internal:8443", "127.0.0.1", "localhost", "::1"})
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://dev.azure.com/contoso/", true},
		{"http://dev.azure.com/contoso/", false},
		{"https://tfs.internal:8443/tfs/", true},
		{"https://tfs.internal/tfs/", false},
		{"https://tfs.internal:9443/tfs/", false},
		{"http://tfs.internal:8443/tfs/", false},
		{"http://127.0.0.1:8080/contoso/", true},
		{"http://localhost:8080/contoso/", true},
		{"http://[::1]:8080/contoso/", true},
	} {
		_, err := hosts.checkPlanURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.url, err, tc.ok)
		}
		if err != nil && !errors.Is(err, approvals.ErrInvalid) {
			t.Errorf("%s: err %v is not ErrInvalid", tc.url, err)
		}
	}
}
