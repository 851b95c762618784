package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/approvalbot/approvalbot/internal/flexdeploytest"
	"github.com/approvalbot/approvalbot/internal/slacktest"
	"github.com/approvalbot/approvalbot/internal/teamstest"
)

// teamsChannel is the Teams conversation of --mode teams.
const teamsChannel = "19:bench@thread.tacv2"

// teamsMembers are the bench's approvers in Teams; Slack knows the same
// emails as the approvers' ids.
var teamsMembers = []teamstest.Member{
	{ID: "29:bench1", Name: "Bench One", AADObjectID: "aad-bench1", Email: "bench1@example.com"},
	{ID: "29:bench2", Name: "Bench Two", AADObjectID: "aad-bench2", Email: "bench2@example.com"},
	{ID: "29:bench3", Name: "Bench Three", AADObjectID: "aad-bench3", Email: "bench3@example.com"},
}

// teamsRun is --mode teams: one bot posting every task to Slack and to
// Teams; clicks alternate between the two chats, one at a time.
type teamsRun struct {
	Tasks                  int
	TeamsClick, TeamsToPut summary
	SlackClick, SlackToPut summary
	// Lookups are the member look-ups the fake connector answered (one per
	// member: the bot caches them).
	Lookups int
}

// runTeams measures a Teams click as the default mode measures a Slack
// click: the time to the 200 of the invoke (the refreshed card in its
// body) and to FlexDeploy's PUT; Slack clicks on the same bot, interleaved,
// for comparison. The bot is built unpaced: pacing is --mode slack's
// subject, not this one's.
func (b *bench) runTeams(ctx context.Context) error {
	if err := b.prepare(ctx, true); err != nil {
		return err
	}
	b.index = newSlackIndex()
	b.slack = slacktest.New()
	b.slack.Quiet = true
	b.slack.SetAnswer(b.index.hook)
	b.fd = flexdeploytest.New()
	tm, err := teamstest.NewServer()
	if err != nil {
		return err
	}
	defer tm.Close()
	for i, m := range teamsMembers {
		tm.AddMember(m)
		b.slack.Emails[m.Email] = approvers[i]
	}
	n := b.opts.clicks
	b.teams.Tasks = 2 * n

	b.bot, err = b.newBotWith(ctx, "teams", func(c *botConfig) bool {
		withTeams(c, tm.ServiceURL(), tm.OpenIDMetadata(), tm.TokenURL())
		return true
	})
	if err != nil {
		return err
	}
	if _, err := b.bot.start(ctx); err != nil {
		return err
	}

	// The tasks, posted to both chats.
	b.index.setIndexing(true)
	client := newClient(4)
	defer client.CloseIdleConnections()
	b.logf("teams: %d tasks into Slack and Teams", 2*n)
	r := runLoad(ctx, client, load{N: 2 * n, Concurrency: 4, Want: 202}, func(ctx context.Context, i int) (*http.Request, error) {
		return intakeRequest(ctx, b.bot.url, b.secrets.APIKey, "x"+itoa(i))
	})
	if r.Errors > 0 {
		b.problem("intake: %d of %d failed, first: %s", r.Errors, r.N, r.FirstErr)
	}
	if err := b.index.waitPosts(ctx, 2*n, 3*time.Minute); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	cards := map[string]string{} // task record id → the card's token
	err = waitUntil(ctx, 3*time.Minute, func() bool {
		for _, a := range tm.Activities() {
			if a.ReplyTo != "" {
				continue
			}
			if token := cardToken(a.Card()); token != "" {
				if id, err := tokenTaskID(token); err == nil {
					cards[id] = token
				}
			}
		}
		return len(cards) >= 2*n
	}, func() string { return fmt.Sprintf("%d of %d cards posted", len(cards), 2*n) })
	if err != nil {
		return fmt.Errorf("teams: %w", err)
	}

	// One channel token for every click, signed before the clocks start,
	// as Teams reuses its token.
	auth := tm.ChannelToken(tm.ServiceURL())
	clicks := newClient(1)
	defer clicks.CloseIdleConnections()
	sentTeams, sentSlack := map[string]time.Time{}, map[string]time.Time{}
	var latTeams, latSlack []time.Duration
	const pace = 10 * time.Millisecond
	b.logf("teams: %d clicks in Teams and %d in Slack, interleaved, one at a time", n, n)
	for i := range 2 * n {
		taskID := "x" + itoa(i)
		var req *http.Request
		if i%2 == 0 {
			body := tm.Click(teamsMembers[(i/2)%len(teamsMembers)], teamsChannel, "approve", map[string]string{"t": cards[recordID(taskID)]})
			if req, err = http.NewRequestWithContext(ctx, http.MethodPost, b.bot.url+"/teams/messages", strings.NewReader(string(body))); err != nil {
				return err
			}
			req.Header.Set("Authorization", auth)
			req.Header.Set("Content-Type", "application/json")
		} else {
			m, err := b.index.waitMessage(ctx, recordID(taskID), 10*time.Second)
			if err != nil {
				return err
			}
			if req, err = clickRequest(ctx, b.bot.url, b.secrets.SigningSecret, m, "approve", approvers[(i/2)%len(approvers)]); err != nil {
				return err
			}
		}
		status, at, d, body, err := doRead(clicks, req)
		switch {
		case err != nil:
			b.problem("click on %s: %v", taskID, err)
			continue
		case status != http.StatusOK:
			b.problem("click on %s answered %d", taskID, status)
			continue
		case i%2 == 0 && !strings.Contains(body, `"type":"application/vnd.microsoft.card.adaptive"`):
			b.problem("Teams click on %s was not counted: %.200s", taskID, body)
			continue
		}
		if i%2 == 0 {
			latTeams, sentTeams[taskID] = append(latTeams, d), at
		} else {
			latSlack, sentSlack[taskID] = append(latSlack, d), at
		}
		if wait := pace - time.Since(at); wait > 0 {
			time.Sleep(wait)
		}
	}
	b.teams.TeamsClick, b.teams.SlackClick = summarize(latTeams), summarize(latSlack)

	arrived := map[string]time.Time{}
	err = waitUntil(ctx, 30*time.Second, func() bool {
		for _, c := range b.fd.Decisions() {
			id := c.Path[strings.LastIndex(c.Path, "/")+1:]
			if _, seen := arrived[id]; !seen {
				arrived[id] = c.At
			}
		}
		return len(arrived) >= len(sentTeams)+len(sentSlack)
	}, func() string {
		return fmt.Sprintf("%d of %d clicks reached FlexDeploy", len(arrived), len(sentTeams)+len(sentSlack))
	})
	if err != nil {
		b.problem("click to FlexDeploy: %v", err)
	}
	if puts := len(b.fd.Decisions()); puts != len(arrived) {
		b.problem("%d FlexDeploy decisions for %d tasks: a task was decided twice", puts, len(arrived))
	}
	var toTeams, toSlack []time.Duration
	for id, at := range arrived {
		if sent, ok := sentTeams[id]; ok {
			toTeams = append(toTeams, at.Sub(sent))
		} else if sent, ok := sentSlack[id]; ok {
			toSlack = append(toSlack, at.Sub(sent))
		}
	}
	b.teams.TeamsToPut, b.teams.SlackToPut = summarize(toTeams), summarize(toSlack)
	for _, c := range tm.Calls() {
		if strings.Contains(c, "/members/") {
			b.teams.Lookups++
		}
	}
	b.logf("teams: Teams click 200 p99 %s, FlexDeploy p50 %s; Slack click 200 p99 %s, FlexDeploy p50 %s",
		ms(b.teams.TeamsClick.P99), ms(b.teams.TeamsToPut.P50), ms(b.teams.SlackClick.P99), ms(b.teams.SlackToPut.P50))
	return b.bot.stop()
}

// withTeams makes c a bot posting to Slack and to the fake Bot Framework
// at serviceURL: one policy naming the approvers by Slack id and by email.
func withTeams(c *botConfig, serviceURL, openIDMetadata, tokenURL string) {
	var emails []string
	for _, m := range teamsMembers {
		emails = append(emails, m.Email)
	}
	c.Policies = fmt.Sprintf("  - name: bench\n    channel: CBENCH\n    approvers: {users: [%s], emails: [%s]}\n    required_approvals: 1\n",
		strings.Join(approvers, ", "), strings.Join(emails, ", "))
	c.PublicURL = "https://approvalbot.example.com"
	c.Extra = fmt.Sprintf("teams: {app_id: %q, app_password: %q, tenant_id: %q, service_url: %q, channel: %q, openid_metadata: %q, token_url: %q}\n",
		teamstest.AppID, teamstest.AppPassword, teamstest.Tenant, serviceURL, teamsChannel, openIDMetadata, tokenURL)
}

// cardToken is the one-time token of a card's approve action.
func cardToken(card map[string]any) string {
	actions, _ := card["actions"].([]any)
	for _, a := range actions {
		act, _ := a.(map[string]any)
		if act["verb"] != "approve" {
			continue
		}
		data, _ := act["data"].(map[string]any)
		t, _ := data["t"].(string)
		return t
	}
	return ""
}

// doRead is do that keeps the body.
func doRead(client *http.Client, req *http.Request) (status int, sent time.Time, d time.Duration, body string, err error) {
	sent = time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, sent, 0, "", err
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, sent, time.Since(sent), string(raw), err
}

// teamsReport is --mode teams' table.
func (b *bench) teamsReport() string {
	r := b.teams
	var s strings.Builder
	fmt.Fprintf(&s, "## Clicks in Microsoft Teams and in Slack\n\n")
	fmt.Fprintf(&s, "%d tasks posted to both chats, store %s, %d CPUs (%s); clicks one at a time, alternating chats; %d Teams member look-up(s) (cached).\n\n",
		r.Tasks, b.res.Store, b.res.CPUs, b.res.CPUModel, r.Lookups)
	s.WriteString("| click | n | to 200 p50 | to 200 p99 | to FlexDeploy PUT p50 | to PUT p99 | p99 < 10 ms to 200 | p50 < 50 ms to PUT |\n")
	s.WriteString("|---|---|---|---|---|---|---|---|\n")
	row := func(name string, click, put summary) {
		fmt.Fprintf(&s, "| %s | %d | %s | %s | %s | %s | %s | %s |\n", name, click.N, ms(click.P50), ms(click.P99), ms(put.P50), ms(put.P99),
			met(click.N > 0 && click.P99 < targetClickP99), met(put.N > 0 && put.P50 < targetClickToCall))
	}
	row("Microsoft Teams (Action.Execute invoke)", r.TeamsClick, r.TeamsToPut)
	row("Slack (block action)", r.SlackClick, r.SlackToPut)
	return s.String()
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}
