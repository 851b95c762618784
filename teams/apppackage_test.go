package teams

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"image/png"
	"io"
	"testing"

	teamsapp "github.com/approvalbot/approvalbot/teams-app"
)

// TestAppPackage: the zip holds the manifest with the app id and the
// public URL's host filled in, and the two icons at Teams' sizes (the
// outline white on transparent).
func TestAppPackage(t *testing.T) {
	t.Parallel()
	const id = "9f1c1f7e-1111-4222-8333-123456789abc"
	raw, err := AppPackage(teamsapp.Manifest, teamsapp.Color, teamsapp.Outline, id, "https://approvals.corp.example/")
	if err != nil {
		t.Fatal(err)
	}
	z, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range z.File {
		rc, _ := f.Open()
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	var m struct {
		ID           string   `json:"id"`
		Manifest     string   `json:"manifestVersion"`
		ValidDomains []string `json:"validDomains"`
		Bots         []struct {
			BotID  string   `json:"botId"`
			Scopes []string `json:"scopes"`
		} `json:"bots"`
		Icons map[string]string `json:"icons"`
	}
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatal(err)
	}
	if m.ID != id || len(m.Bots) != 1 || m.Bots[0].BotID != id || len(m.ValidDomains) != 1 || m.ValidDomains[0] != "approvals.corp.example" || m.Manifest != "1.17" {
		t.Errorf("manifest %+v", m)
	}
	for name, size := range map[string]int{m.Icons["color"]: 192, m.Icons["outline"]: 32} {
		img, err := png.Decode(bytes.NewReader(files[name]))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() != size || b.Dy() != size {
			t.Errorf("%s is %v, want %d×%d", name, b, size, size)
		}
		if size == 32 {
			for y := 0; y < size; y++ {
				for x := 0; x < size; x++ {
					r, g, b, a := img.At(x, y).RGBA()
					if a != 0 && (r != 0xffff || g != 0xffff || b != 0xffff) {
						t.Fatalf("outline pixel %d,%d is not white or transparent", x, y)
					}
				}
			}
		}
	}
	for _, bad := range [][2]string{{"not-a-guid", "https://a.example"}, {id, "http://a.example"}, {id, ""}} {
		if _, err := AppPackage(teamsapp.Manifest, teamsapp.Color, teamsapp.Outline, bad[0], bad[1]); err == nil {
			t.Errorf("AppPackage(%q, %q) took it", bad[0], bad[1])
		}
	}
}
