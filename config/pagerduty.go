package config

import (
	"fmt"
	"slices"
	"strings"
)

// PagerDutyConfig is PagerDuty's REST API, asked who is on call for
// policies that name schedules (approvers.pagerduty, break_glass.pagerduty).
type PagerDutyConfig struct {
	APIURL string `mapstructure:"api_url"`
	// Token is a REST API key (read-only is enough).
	Token string `mapstructure:"token"`
}

// PagerDutyApproversConfig names the people on call on schedules.
type PagerDutyApproversConfig struct {
	Schedules []string `mapstructure:"schedules"`
}

// defaultPagerDuty is PagerDuty's own API.
func defaultPagerDuty() PagerDutyConfig {
	return PagerDutyConfig{APIURL: "https://api.pagerduty.com"}
}

// validatePagerDuty checks the section and the schedules the policies
// name: naming one needs the token.
func (c *Config) validatePagerDuty(p *problems) {
	checkURL(p, "pagerduty.api_url", c.PagerDuty.APIURL)
	used := ""
	for i, pol := range c.Policies {
		key := fmt.Sprintf("policies[%d]", i)
		for _, l := range []struct {
			key string
			ids []string
		}{{key + ".approvers.pagerduty.schedules", pol.Approvers.PagerDuty.Schedules}, {key + ".break_glass.pagerduty.schedules", pol.BreakGlass.PagerDuty.Schedules}} {
			for j, id := range l.ids {
				if strings.TrimSpace(id) == "" {
					p.addf(fmt.Sprintf("%s[%d]", l.key, j), "must not be empty")
				}
			}
			if len(l.ids) > 0 && used == "" {
				used = l.key
			}
		}
	}
	if used != "" && c.PagerDuty.Token == "" {
		p.addf("pagerduty.token", "required: %s names PagerDuty schedules", used)
	}
}

// onCallSchedules are the schedules named, trimmed.
func onCallSchedules(a PagerDutyApproversConfig) []string {
	var out []string
	for _, id := range a.Schedules {
		if id = strings.TrimSpace(id); id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
