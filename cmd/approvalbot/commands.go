package main

import (
	"context"
	"fmt"
	"io"

	"github.com/approvalbot/approvalbot/config"
	ddb "github.com/approvalbot/approvalbot/store/dynamodb"
)

// loadConfig loads and validates the configuration; problems are printed
// to stderr, every one of them.
func loadConfig(flagPath string, stderr io.Writer) (*config.Config, string, error) {
	path := config.ResolvePath(flagPath)
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, "approvalbot: configuration:", err)
		return nil, path, errReported
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "approvalbot: the configuration%s is invalid:\n%s\n", describePath(path), err)
		return nil, path, errReported
	}
	return cfg, path, nil
}

func describePath(path string) string {
	if path == "" {
		return " (defaults and environment)"
	}
	return " " + path
}

func configCheck(flagPath string, stdout, stderr io.Writer) error {
	cfg, path, err := loadConfig(flagPath, stderr)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(stdout, "warning:", w)
	}
	fmt.Fprintf(stdout, "configuration%s is valid\n", describePath(path))
	return nil
}

func createTable(ctx context.Context, flagPath string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig(flagPath, stderr)
	if err != nil {
		return err
	}
	d := cfg.Store.DynamoDB
	client, err := ddb.NewClient(ctx, ddb.Options{Region: d.Region, Endpoint: d.Endpoint})
	if err != nil {
		return err
	}
	res, err := ddb.CreateTable(ctx, client, d.Table)
	if err != nil {
		return err
	}
	if res.Created {
		fmt.Fprintf(stdout, "created table %s with its index %s\n", d.Table, ddb.DueIndex)
	} else {
		fmt.Fprintf(stdout, "table %s exists already, with its index %s\n", d.Table, ddb.DueIndex)
	}
	if res.TTLEnabled {
		fmt.Fprintln(stdout, "TTL is enabled on the attribute ttl: final tasks are deleted 30 days after they expire")
	} else {
		fmt.Fprintln(stdout, "TTL is not supported by this endpoint: final tasks stay until deleted by hand (harmless)")
	}
	return nil
}
