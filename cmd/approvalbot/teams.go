package main

import (
	"net/http"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/approvalbot/approvalbot/config"
	"github.com/approvalbot/approvalbot/internal/pace"
	"github.com/approvalbot/approvalbot/internal/rest"
	"github.com/approvalbot/approvalbot/teams"
)

// teamsChat builds the Teams chat when teams.app_id is set: its notifier
// (registered among the chats, posting every task when teams.channel is
// set) and, once the service exists, its messaging endpoint. The domain's
// clock renders cards (windows, freezes, expiry); the channel's tokens and
// Entra's are checked against the wall clock, as Slack's signatures are:
// their issuers run on real time.
func teamsChat(cfg *config.Config, tools *approvals.Tools, policies func() []approvals.Policy, clock approvals.Clock, paceOff bool) (chat *approvals.Chat, endpoint func(*approvals.Service) http.Handler) {
	t := cfg.Teams
	if !t.Enabled() {
		return nil, nil
	}
	now := time.Now
	if clock != nil {
		now = clock
	}
	conn := teams.NewConnector(teams.ConnectorConfig{
		AppID: t.AppID, AppPassword: t.AppPassword, TenantID: t.TenantID, TokenURL: t.TokenURL,
		Timeout: t.Timeout, Pacer: teams.NewPacer(pace.Config{Off: paceOff}),
	})
	n := teams.NewNotifier(teams.NotifierConfig{
		Connector: conn, ServiceURL: t.ServiceURL, Channel: t.Channel, PublicURL: cfg.Server.PublicURL,
		Tools: tools, Policies: policies, Now: now,
	})
	c := n.Chat(t.Channel != "")
	return &c, func(svc *approvals.Service) http.Handler {
		return teams.NewHandler(teams.HandlerConfig{
			Verifier:     teams.NewVerifier(t.OpenIDMetadata, t.AppID, rest.NewHTTPClient(t.Timeout), nil),
			TenantID:     t.TenantID,
			Decider:      svc,
			Members:      conn,
			Tools:        tools,
			Policies:     policies,
			PublicURL:    cfg.Server.PublicURL,
			MaxBodyBytes: cfg.Server.MaxBodyBytes,
			Now:          now,
		})
	}
}
