package teams

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/approvalbot/approvalbot/approvals"
	"github.com/rs/zerolog"
)

const (
	// answerWithin bounds a click's answer: Teams shows the clicker an
	// error after about 3 s.
	answerWithin = 2500 * time.Millisecond
	// memberTTL is how long a clicker's email is kept.
	memberTTL = 10 * time.Minute
	// maxMembers bounds the cache; past it, expired entries are dropped.
	maxMembers = 10000
	// defaultMaxBodyBytes bounds an activity (an invoke carries the card's
	// data, a few KiB).
	defaultMaxBodyBytes = 64 << 10

	typeCard    = "application/vnd.microsoft.card.adaptive"
	typeMessage = "application/vnd.microsoft.activity.message"
)

// Decider decides a task on a click.
type Decider interface {
	Decide(ctx context.Context, req approvals.DecideRequest) (*approvals.Task, error)
}

// Members looks a member of a conversation up (the Connector).
type Members interface {
	Member(ctx context.Context, serviceURL, conversation, member string) (Member, error)
}

// HandlerConfig configures the messaging endpoint.
type HandlerConfig struct {
	Verifier *Verifier
	// TenantID is the only tenant whose activities are acted on.
	TenantID string
	Decider  Decider
	Members  Members
	Tools    *approvals.Tools
	Policies func() []approvals.Policy
	// PublicURL starts a require_sso task's link.
	PublicURL    string
	MaxBodyBytes int64
	Now          func() time.Time
}

// Handler serves POST /teams/messages, the bot's messaging endpoint.
type Handler struct {
	cfg HandlerConfig

	mu      sync.Mutex
	members map[string]cachedMember
}

type cachedMember struct {
	email, name string
	at          time.Time
}

// NewHandler returns the messaging endpoint.
func NewHandler(cfg HandlerConfig) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = defaultMaxBodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{cfg: cfg, members: map[string]cachedMember{}}
}

// invokeResponse is the HTTP answer to an invoke.
type invokeResponse struct {
	StatusCode int    `json:"statusCode"`
	Type       string `json:"type"`
	Value      any    `json:"value"`
}

// ServeHTTP checks the channel's token before reading anything of the
// body's, then the activity's serviceUrl and tenant, and answers a card
// click with the refreshed card or a message for the clicker only.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	log := zerolog.Ctx(r.Context())
	if h.cfg.Verifier == nil {
		writeJSONError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	id, err := h.cfg.Verifier.Verify(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		log.Warn().Err(err).Msg("teams: refused activity")
		writeJSONError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSONError(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		writeJSONError(w, http.StatusBadRequest, "cannot read body")
		return
	}
	a, err := ParseActivity(body)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := id.Check(a); err != nil {
		log.Warn().Err(err).Msg("teams: refused activity")
		writeJSONError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	if h.cfg.TenantID == "" || a.Tenant() != h.cfg.TenantID {
		log.Warn().Str("tenant", oneLine(a.Tenant(), 60)).Msg("teams: activity from a foreign tenant")
		writeJSONError(w, http.StatusForbidden, "tenant not allowed")
		return
	}
	if !a.IsCardAction() {
		// Installs, messages to the bot, conversation updates: nothing to do.
		w.WriteHeader(http.StatusOK)
		return
	}
	answer := h.clickWithin(r.Context(), a)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(answer)
}

// clickWithin answers the click within answerWithin; what takes longer is
// answered with a request to try again (the decision, if it lands, shows on
// the card).
func (h *Handler) clickWithin(ctx context.Context, a *Activity) invokeResponse {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), answerWithin)
	defer cancel()
	done := make(chan invokeResponse, 1)
	go func() { done <- h.click(hctx, a) }()
	select {
	case r := <-done:
		return r
	case <-hctx.Done():
		zerolog.Ctx(ctx).Warn().Msg("teams: click not handled in time; answered without waiting further")
		return message("approvalbot took too long to answer; look at the card again in a moment, and click again if nothing changed.")
	}
}

// click decides one Action.Execute.
func (h *Handler) click(ctx context.Context, a *Activity) invokeResponse {
	token := a.DataText(dataToken)
	verb := a.Value.Action.Verb
	req := approvals.DecideRequest{Token: token}
	switch verb {
	case VerbApprove:
		req.Action, req.Confirm, req.Reason = approvals.ActionApprove, a.DataText(inputConfirm), ""
	case VerbReject:
		req.Action, req.Reason = approvals.ActionReject, clip(a.DataText(inputReason), maxReasonChars)
	case VerbBreakGlass:
		req.Action, req.BreakGlass, req.Reason = approvals.ActionApprove, true, clip(a.DataText(inputReason), maxReasonChars)
	default:
		return message("This button is not one of approvalbot's.")
	}
	if token == "" || h.cfg.Decider == nil {
		return message(approvals.Reply(approvals.ErrBadToken, "", ChatDisplayName))
	}
	who, err := h.clicker(ctx, a)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("teams: member look-up failed; click refused")
		return message(approvals.Reply(approvals.ErrClickerUnknown, "", ChatDisplayName))
	}
	req.User = who
	task, err := h.cfg.Decider.Decide(ctx, req)
	if err != nil {
		if card, ok := PromptCard(task, err, token); ok && promptable(verb, req, err) {
			return invokeResponse{StatusCode: http.StatusOK, Type: typeCard, Value: card}
		}
		return message(h.replyText(ctx, err, task))
	}
	cardToken := token
	if task.Status.Final() {
		cardToken = ""
	}
	return invokeResponse{StatusCode: http.StatusOK, Type: typeCard, Value: RenderCard(task, h.options(task, cardToken))}
}

// promptable: a refusal that asks for more is answered with the card that
// asks for it, unless the click already came from that card (then its
// input was missing or wrong, and the refusal says so).
func promptable(verb string, req approvals.DecideRequest, err error) bool {
	switch {
	case isKind(err, approvals.ErrReasonRequired):
		return verb == VerbReject && req.Reason == ""
	case isKind(err, approvals.ErrBreakGlassNeeded):
		return verb == VerbApprove
	case isKind(err, approvals.ErrConfirmRequired):
		return verb == VerbApprove && req.Confirm == ""
	}
	return false
}

func (h *Handler) options(t *approvals.Task, token string) RenderOptions {
	var p *approvals.Policy
	if h.cfg.Policies != nil {
		p = approvals.FindPolicy(h.cfg.Policies(), t.Policy)
	}
	return RenderOptions{Token: token, Policy: p, Tool: h.cfg.Tools.DisplayName(t.Source), Now: h.cfg.Now(), PublicURL: h.cfg.PublicURL}
}

// replyText is what the clicker reads when a decision fails: the reply of
// the error's kind in approvals' one table. Refusals are the rules at work
// and are not logged here; only an error the table does not know is
// logged as an error.
func (h *Handler) replyText(ctx context.Context, err error, task *approvals.Task) string {
	kind := approvals.KindOf(err)
	switch {
	case kind.Refusal:
	case kind.Code == approvals.CodeInternal:
		zerolog.Ctx(ctx).Error().Err(err).Msg("teams: decide task")
	default:
		zerolog.Ctx(ctx).Warn().Err(err).Str("code", string(kind.Code)).Msg("teams: decide task")
	}
	tool := ""
	if task != nil {
		tool = flat(h.cfg.Tools.DisplayName(task.Source))
	}
	return approvals.Reply(err, tool, ChatDisplayName)
}

// clicker is the person who clicked: their Entra object id, their name,
// and their email from the member look-up (cached memberTTL). Without the
// email the click is refused: it is who the person is across chats.
func (h *Handler) clicker(ctx context.Context, a *Activity) (approvals.Person, error) {
	aad := a.From.AADObjectID
	if aad == "" || a.From.ID == "" {
		return approvals.Person{}, errors.New("the click names no Entra user")
	}
	key := a.Tenant() + "/" + aad
	now := h.cfg.Now()
	h.mu.Lock()
	m, ok := h.members[key]
	h.mu.Unlock()
	if !ok || now.Sub(m.at) >= memberTTL {
		if h.cfg.Members == nil {
			return approvals.Person{}, errors.New("no member look-up")
		}
		got, err := h.cfg.Members.Member(ctx, a.ServiceURL, a.Conversation.ID, a.From.ID)
		if err != nil {
			return approvals.Person{}, err
		}
		if got.AADObjectID != "" && got.AADObjectID != aad {
			return approvals.Person{}, errors.New("the member look-up answered another user")
		}
		email := got.Email
		if email == "" {
			email = got.UserPrincipalName
		}
		if email == "" {
			return approvals.Person{}, errors.New("the member has no email")
		}
		m = cachedMember{email: email, name: got.Name, at: now}
		h.mu.Lock()
		if len(h.members) >= maxMembers {
			for k, v := range h.members {
				if now.Sub(v.at) >= memberTTL {
					delete(h.members, k)
				}
			}
		}
		h.members[key] = m
		h.mu.Unlock()
	}
	name := m.name
	if name == "" {
		name = a.From.Name
	}
	return person(aad, name, m.email), nil
}

func message(text string) invokeResponse {
	return invokeResponse{StatusCode: http.StatusOK, Type: typeMessage, Value: text}
}

func clip(s string, most int) string {
	if r := []rune(s); len(r) > most {
		return string(r[:most])
	}
	return s
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
