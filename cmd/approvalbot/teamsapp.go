package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/approvalbot/approvalbot/teams"
	teamsapp "github.com/approvalbot/approvalbot/teams-app"
)

// teamsCommand runs `approvalbot teams app-package --config FILE --out FILE.zip`:
// the Teams app package an admin uploads, with the app id and the public
// URL's host filled in.
func teamsCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "app-package" {
		fmt.Fprintf(stderr, "approvalbot teams: want app-package\n\n%s", usage)
		return errUsage
	}
	fs := flag.NewFlagSet("approvalbot teams app-package", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	out := fs.String("out", "approvalbot-teams.zip", "the zip to write")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "approvalbot teams app-package: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	cfg, _, err := loadConfig(*path, stderr)
	if err != nil {
		return err
	}
	if !cfg.Teams.Enabled() {
		return errors.New("teams app-package: teams.app_id is not set")
	}
	zip, err := teams.AppPackage(teamsapp.Manifest, teamsapp.Color, teamsapp.Outline, cfg.Teams.AppID, cfg.Server.PublicURL)
	if err != nil {
		return fmt.Errorf("teams app-package: %w", err)
	}
	if err := os.WriteFile(*out, zip, 0o644); err != nil {
		return fmt.Errorf("teams app-package: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s: upload it in Teams (Apps → Manage your apps → Upload an app)\n", *out)
	return nil
}
