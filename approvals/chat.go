package approvals

import (
	"errors"
	"fmt"
	"sync"
)

// Chat is one chat tool as the core knows it: a value its adapter builds
// and the wiring registers, as a deployment tool is. The core never names
// a chat; it asks the registry (Chats).
type Chat struct {
	// Name qualifies the ids of the chat's people ("chat" → "chat:U123")
	// and marks the chat's messages: lower case letters, digits and dashes.
	Name string
	// DisplayName is how people read it: notes and texts name the chat a
	// decision came from with it ("Approved in <DisplayName> by …").
	DisplayName string
	// Notifier posts and updates the chat's messages; nil until the chat's
	// credentials are configured (posts then wait in the outbox).
	// SetNotifier replaces it at run time.
	Notifier Notifier
	// Directory answers who is who in the chat; nil: nobody can be looked
	// up (group members, people by email).
	Directory Directory
	// PostsByDefault posts every task to the chat, in its default channel
	// when the task's policy names none for it; otherwise a task is posted
	// there only when its policy names a channel for the chat.
	PostsByDefault bool
	// Primary marks the chat whose user and group ids the policies'
	// approvers.users, approvers.groups and require_from name, and to which
	// records written before chats were registered (naming no chat)
	// belong. At most one chat is primary.
	Primary bool
}

// Chats is the registry of chats, built once at start-up; only the
// notifiers change at run time (credentials arriving by a reload).
type Chats struct {
	list   []*Chat
	byName map[string]*Chat
	mu     sync.RWMutex // guards the notifiers
}

// NewChats checks and registers the chats: names well formed and unique,
// at most one primary.
func NewChats(chats ...Chat) (*Chats, error) {
	r := &Chats{byName: make(map[string]*Chat, len(chats))}
	var errs []error
	primary := ""
	for i := range chats {
		c := chats[i]
		switch {
		case !toolName.MatchString(c.Name):
			errs = append(errs, fmt.Errorf("chat %q: the name must be lower case letters, digits and dashes", c.Name))
			continue
		case r.byName[c.Name] != nil:
			errs = append(errs, fmt.Errorf("chat %q is registered twice", c.Name))
			continue
		case c.Primary && primary != "":
			errs = append(errs, fmt.Errorf("chats %q and %q: at most one chat is primary", primary, c.Name))
			continue
		}
		if c.Primary {
			primary = c.Name
		}
		if c.DisplayName == "" {
			c.DisplayName = c.Name
		}
		r.list = append(r.list, &c)
		r.byName[c.Name] = &c
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// Get returns the chat with the name; "" is the primary chat (records
// written before chats were registered name none).
func (r *Chats) Get(name string) (*Chat, bool) {
	if r == nil {
		return nil, false
	}
	if name == "" {
		c := r.primary()
		return c, c != nil
	}
	c, ok := r.byName[name]
	return c, ok
}

func (r *Chats) primary() *Chat {
	if r == nil {
		return nil
	}
	for _, c := range r.list {
		if c.Primary {
			return c
		}
	}
	return nil
}

// All returns the chats in registration order.
func (r *Chats) All() []*Chat {
	if r == nil {
		return nil
	}
	return r.list
}

// Canonical is the name of the chat name refers to: the primary chat's for
// "", name itself otherwise.
func (r *Chats) Canonical(name string) string {
	if name == "" && r != nil {
		if c := r.primary(); c != nil {
			return c.Name
		}
	}
	return name
}

// DisplayName is how people read the chat's name; the primary chat's for
// "" or an unknown name (a surface that is no chat, such as the web page,
// acts on the primary chat's ids).
func (r *Chats) DisplayName(name string) string {
	c, ok := r.Get(name)
	if !ok {
		c, ok = r.Get("")
	}
	if !ok {
		return "chat"
	}
	return c.DisplayName
}

// SetNotifier installs (or, with nil, removes) the chat's notifier.
func (r *Chats) SetNotifier(name string, n Notifier) {
	c, ok := r.Get(name)
	if !ok {
		return
	}
	r.mu.Lock()
	c.Notifier = n
	r.mu.Unlock()
}

// notifier is the chat's notifier in force, nil while there is none.
func (r *Chats) notifier(name string) Notifier {
	c, ok := r.Get(name)
	if !ok {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return c.Notifier
}

// directory is the chat's directory, nil when it has none.
func (r *Chats) directory(name string) Directory {
	if c, ok := r.Get(name); ok {
		return c.Directory
	}
	return nil
}

// errNoNotifier keeps a chat's messages waiting in the outbox until its
// credentials are configured.
func errNoNotifier(displayName string) error {
	return fmt.Errorf("%s is not configured (no credentials): the message waits in the outbox", displayName)
}
