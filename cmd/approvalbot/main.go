// Command approvalbot lets people approve or reject deployments from Slack.
//
//	approvalbot serve [--config FILE]
//	approvalbot config check [--config FILE]
//	approvalbot dynamodb create-table [--config FILE]
//	approvalbot receipt public-key [--config FILE]
//	approvalbot receipt verify FILE --public-key KEY
//	approvalbot teams app-package [--config FILE] [--out FILE.zip]
//	approvalbot attestation verify FILE --public-key KEY [--digest D]
//	approvalbot healthcheck [--url URL]
//	approvalbot version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	// The zone database, for the policies' windows: the container image
	// has none.
	_ "time/tzdata"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

const usage = `approvalbot lets people approve or reject deployments from Slack.

Usage:
  approvalbot serve [--config FILE]                 run the server
  approvalbot config check [--config FILE]          validate the configuration
  approvalbot dynamodb create-table [--config FILE] create the DynamoDB table
  approvalbot receipt public-key [--config FILE]    print the receipts' public key
  approvalbot receipt verify FILE --public-key KEY  check a decision's receipt offline
  approvalbot teams app-package [--config FILE] [--out FILE.zip]
                                                    write the Teams app package to upload
  approvalbot attestation verify FILE --public-key KEY [--digest D]
                                                    check a decision's attestation offline
  approvalbot healthcheck [--url URL]               exit 0 if a running bot's /healthz answers 200
  approvalbot version                               print the version

The configuration file is --config, else $APPROVALBOT_CONFIG, else
./approvalbot.yaml if present, else built-in defaults and the environment
(APPROVALBOT_ + the key path in capitals, e.g. APPROVALBOT_SLACK_BOT_TOKEN).
`

// errUsage is a command line mistake: the usage was printed.
var errUsage = errors.New("usage")

// errReported is a failure whose details were printed already.
var errReported = errors.New("failed")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	case errors.Is(err, errReported):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "approvalbot:", err)
		os.Exit(1)
	}
}

// run is the single exit point: it parses the command line and runs the
// command until it ends or ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch cmd, rest := args[0], args[1:]; {
	case cmd == "serve":
		path, err := configFlag("serve", rest, stderr)
		if err != nil {
			return err
		}
		return serve(ctx, path, stdout, stderr, serveOptions{})
	case cmd == "config" && len(rest) > 0 && rest[0] == "check":
		path, err := configFlag("config check", rest[1:], stderr)
		if err != nil {
			return err
		}
		return configCheck(path, stdout, stderr)
	case cmd == "dynamodb" && len(rest) > 0 && rest[0] == "create-table":
		path, err := configFlag("dynamodb create-table", rest[1:], stderr)
		if err != nil {
			return err
		}
		return createTable(ctx, path, stdout, stderr)
	case cmd == "receipt":
		return receipt(rest, os.Stdin, stdout, stderr)
	case cmd == "teams":
		return teamsCommand(rest, stdout, stderr)
	case cmd == "attestation":
		return attestationCmd(ctx, rest, os.Stdin, stdout, stderr)
	case cmd == "healthcheck":
		return healthcheck(ctx, rest, stdout, stderr)
	case cmd == "version" || cmd == "--version":
		fmt.Fprintln(stdout, "approvalbot", versionString())
		return nil
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "approvalbot: unknown command %q\n\n%s", args[0], usage)
	return errUsage
}

func configFlag(name string, args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet("approvalbot "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return "", errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "approvalbot %s: unexpected argument %q\n", name, fs.Arg(0))
		return "", errUsage
	}
	return *path, nil
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
