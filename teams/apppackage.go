package teams

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// AppPackage is the zip an admin uploads to Teams: manifest.json with the
// bot's app id (as the app's id and the bot's), the developer links and
// validDomains from publicURL, and the two icons at the root.
func AppPackage(manifest, color, outline []byte, appID, publicURL string) ([]byte, error) {
	if !guid.MatchString(appID) {
		return nil, errors.New("teams.app_id must be the Azure Bot's Microsoft App ID (a GUID)")
	}
	u, err := url.Parse(publicURL)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return nil, errors.New("server.public_url must be the https address Teams reaches the bot at")
	}
	var m map[string]any
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("teams-app/manifest.json: %w", err)
	}
	m["id"] = strings.ToLower(appID)
	bots, _ := m["bots"].([]any)
	if len(bots) != 1 {
		return nil, errors.New("teams-app/manifest.json: want exactly one bot")
	}
	bots[0].(map[string]any)["botId"] = strings.ToLower(appID)
	site := strings.TrimSuffix(publicURL, "/")
	if dev, ok := m["developer"].(map[string]any); ok {
		dev["websiteUrl"], dev["privacyUrl"], dev["termsOfUseUrl"] = site, site, site
	}
	m["validDomains"] = []string{u.Hostname()}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{{"manifest.json", out}, {"color.png", color}, {"outline.png", outline}} {
		w, err := z.Create(f.name)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := z.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
