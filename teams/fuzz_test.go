package teams

import (
	"testing"
)

// FuzzParseActivity: the parser of verified bodies never panics, and what
// it accepts has a type and a serviceUrl.
func FuzzParseActivity(f *testing.F) {
	f.Add([]byte(`{"type":"invoke","name":"adaptiveCard/action","serviceUrl":"https://smba.trafficmanager.net/teams/","channelId":"msteams","from":{"id":"29:1","aadObjectId":"a"},"conversation":{"id":"19:x@thread.tacv2","tenantId":"t"},"value":{"action":{"type":"Action.Execute","verb":"approve","data":{"t":"tok","reason":"r"}}}}`))
	f.Add([]byte(`{"type":"message","serviceUrl":"x","value":{"action":{"data":{"t":5}}}}`))
	f.Add([]byte(`{"type":"invoke","serviceUrl":"x","value":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := ParseActivity(body)
		if err != nil {
			return
		}
		if a.Type == "" || a.ServiceURL == "" {
			t.Fatalf("accepted %q without type or serviceUrl", body)
		}
		_ = a.Tenant()
		if a.IsCardAction() {
			_ = a.DataText(dataToken)
			_ = a.DataText(inputReason)
		}
	})
}
