package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// dockerfileInstructions reads ../Dockerfile as Docker does: one
// instruction a line after joining continuations, comments dropped.
func dockerfileInstructions(t *testing.T) [][2]string {
	t.Helper()
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	var cur strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		op, rest, _ := strings.Cut(cur.String(), " ")
		out = append(out, [2]string{strings.ToUpper(op), strings.TrimSpace(rest)})
		cur.Reset()
	}
	return out
}

var digestPinned = regexp.MustCompile(`^[^\s@]+:[^\s@]+@sha256:[0-9a-f]{64}(\s+AS\s+\S+)?$`)

// TestDockerfilePinsBasesAndChecksHealth: every base image is pinned by
// digest (with its tag, to say which release), and the image's HEALTHCHECK
// runs the binary's own healthcheck command, in exec form: the distroless
// base has no shell and no curl.
func TestDockerfilePinsBasesAndChecksHealth(t *testing.T) {
	t.Parallel()
	var entrypoint []string
	healthchecks := 0
	for _, in := range dockerfileInstructions(t) {
		switch in[0] {
		case "FROM":
			if !digestPinned.MatchString(in[1]) {
				t.Errorf("FROM %s: not pinned as image:tag@sha256:digest", in[1])
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in[1]), &entrypoint); err != nil {
				t.Errorf("ENTRYPOINT %s: not in exec form: %v", in[1], err)
			}
		case "HEALTHCHECK":
			healthchecks++
			_, cmd, ok := strings.Cut(in[1], "CMD ")
			var argv []string
			if !ok || json.Unmarshal([]byte(strings.TrimSpace(cmd)), &argv) != nil {
				t.Errorf("HEALTHCHECK %s: want CMD in exec form (no shell in the image)", in[1])
				continue
			}
			if len(argv) < 2 || argv[1] != "healthcheck" {
				t.Errorf("HEALTHCHECK runs %v, want the binary's healthcheck command", argv)
			}
			defer func() {
				if len(entrypoint) == 0 || argv[0] != entrypoint[0] {
					t.Errorf("HEALTHCHECK runs %s, the ENTRYPOINT is %v", argv[0], entrypoint)
				}
			}()
		}
	}
	if healthchecks != 1 {
		t.Errorf("%d HEALTHCHECK instructions, want 1", healthchecks)
	}
}
