package teams

import (
	"encoding/json"
	"errors"
	"strings"
)

// Activity is the part of a Bot Framework activity the bot reads. Teams
// sends much more; the rest is ignored.
type Activity struct {
	Type         string       `json:"type"`
	ID           string       `json:"id"`
	Name         string       `json:"name"`
	ChannelID    string       `json:"channelId"`
	ServiceURL   string       `json:"serviceUrl"`
	From         Account      `json:"from"`
	Conversation Conversation `json:"conversation"`
	ChannelData  ChannelData  `json:"channelData"`
	Value        *InvokeValue `json:"value,omitempty"`
	ReplyToID    string       `json:"replyToId,omitempty"`
}

// Account is a person or the bot in an activity.
type Account struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	AADObjectID string `json:"aadObjectId"`
}

// Conversation is where an activity happened.
type Conversation struct {
	ID               string `json:"id"`
	TenantID         string `json:"tenantId"`
	ConversationType string `json:"conversationType"`
}

// ChannelData is Teams' own part of an activity.
type ChannelData struct {
	Tenant struct {
		ID string `json:"id"`
	} `json:"tenant"`
}

// InvokeValue is the value of an adaptiveCard/action invoke.
type InvokeValue struct {
	Action struct {
		Type string         `json:"type"`
		Verb string         `json:"verb"`
		Data map[string]any `json:"data"`
	} `json:"action"`
}

// Tenant is the activity's tenant: the conversation's, else the channel
// data's.
func (a *Activity) Tenant() string {
	if a.Conversation.TenantID != "" {
		return a.Conversation.TenantID
	}
	return a.ChannelData.Tenant.ID
}

// IsCardAction reports an Action.Execute click on a card.
func (a *Activity) IsCardAction() bool {
	return a.Type == "invoke" && a.Name == "adaptiveCard/action" && a.Value != nil
}

// DataText is a string field of the action's data (the token "t", an
// input's value), trimmed; "" when absent or not a string.
func (a *Activity) DataText(key string) string {
	if a.Value == nil {
		return ""
	}
	s, _ := a.Value.Action.Data[key].(string)
	return strings.TrimSpace(s)
}

// maxActivityBytes bounds an activity; the handler's body limit is the
// outer one.
const maxActivityBytes = 256 << 10

// ParseActivity reads an activity from a verified body. Its errors never
// quote the body.
func ParseActivity(body []byte) (*Activity, error) {
	if len(body) > maxActivityBytes {
		return nil, errors.New("activity too large")
	}
	var a Activity
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, errors.New("malformed activity")
	}
	if a.Type == "" {
		return nil, errors.New("activity without a type")
	}
	if a.ServiceURL == "" {
		return nil, errors.New("activity without a serviceUrl")
	}
	return &a, nil
}
