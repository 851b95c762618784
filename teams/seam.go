package teams

import "github.com/approvalbot/approvalbot/approvals"

// The approvals shapes of issue 20 ("chats as registered values") that this
// package is written against until they land in approvals/; this file goes
// then, and its names become approvals'.

// MessageRef names a posted chat message: the chat, the conversation, the
// activity id, and for a direct copy whom it was sent to.
type MessageRef struct{ Chat, Channel, TS, User string }

// person is a Teams clicker as approvals knows people. Until the seam
// lands approvals.Person has only an id and a name: the id is the email,
// which is who the person is across chats.
func person(aadObjectID, name, email string) approvals.Person {
	_ = aadObjectID
	return approvals.Person{ID: email, Name: name}
}
