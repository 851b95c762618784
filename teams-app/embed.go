// Package teamsapp holds the Teams app package's files: the manifest
// (teams-app/manifest.json, with the placeholder app id
// 00000000-0000-0000-0000-000000000000 and example.com domains that
// `approvalbot teams app-package` replaces) and its two icons.
package teamsapp

import _ "embed"

// Manifest is manifest.json as committed.
//
//go:embed manifest.json
var Manifest []byte

// Color is the 192×192 colour icon.
//
//go:embed color.png
var Color []byte

// Outline is the 32×32 white-on-transparent outline icon.
//
//go:embed outline.png
var Outline []byte
