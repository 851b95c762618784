package slacktest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Socket Mode: with AppToken set, the fake Slack answers
// apps.connections.open with a ws:// URL of its own, greets each connection
// with hello, and SendInteractive plays Slack's side of an interactive
// envelope: send it, wait for the ack.
type socketSide struct {
	mu       sync.Mutex
	conns    []*websocket.Conn
	acks     map[string]chan json.RawMessage
	opens    int
	refused  []string      // Authorization headers apps.connections.open refused
	drop     int           // connections still to close right after hello
	changed  chan struct{} // closed and replaced when a connection is added
	upgrader websocket.Upgrader
}

// EnableSocketMode makes the fake accept Socket Mode connections from a
// client holding appToken.
func (f *Server) EnableSocketMode(appToken string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appToken = appToken
	f.socket = &socketSide{
		acks:     map[string]chan json.RawMessage{},
		changed:  make(chan struct{}),
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
	}
}

// socketState returns the Socket Mode side, nil until EnableSocketMode.
func (f *Server) socketState() *socketSide {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.socket
}

// SocketOpens counts apps.connections.open calls that were granted.
func (f *Server) SocketOpens() int {
	s := f.socketState()
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

// RefusedAuth returns the Authorization headers of the
// apps.connections.open calls that were refused, in order.
func (f *Server) RefusedAuth() []string {
	s := f.socketState()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.refused...)
}

// CloseAfterHello makes the fake close the next n connections right after
// their hello, as a refreshed or failed link does; the client should
// reconnect. Such connections never count as connected.
func (f *Server) CloseAfterHello(n int) {
	s := f.socketState()
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop = n
}

// serveSocket handles apps.connections.open and the WebSocket; it reports
// whether the request was one of those.
func (f *Server) serveSocket(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	s, token := f.socket, f.appToken
	f.mu.Unlock()
	if s == nil {
		return false
	}
	switch r.URL.Path {
	case "/apps.connections.open":
		w.Header().Set("Content-Type", "application/json")
		if auth := r.Header.Get("Authorization"); auth != "Bearer "+token {
			s.mu.Lock()
			s.refused = append(s.refused, auth)
			s.mu.Unlock()
			_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
			return true
		}
		s.mu.Lock()
		s.opens++
		s.mu.Unlock()
		url := "ws" + strings.TrimPrefix(f.Server.URL, "http") + "/socket-link"
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "url": url})
		return true
	case "/socket-link":
		conn, err := s.upgrader.Upgrade(w, r, nil)
		if err != nil {
			return true
		}
		if sendHello(conn) != nil {
			_ = conn.Close()
			return true
		}
		s.mu.Lock()
		drop := s.drop > 0
		if drop {
			s.drop--
		} else {
			s.conns = append(s.conns, conn)
			close(s.changed)
			s.changed = make(chan struct{})
		}
		s.mu.Unlock()
		if drop {
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseGoingAway, "link refreshed"), time.Now().Add(time.Second))
			_ = conn.Close()
			return true
		}
		go s.readAcks(conn)
		return true
	}
	return false
}

// sendHello greets a new connection as Slack does, and pings it as Slack
// does every few seconds.
func sendHello(conn *websocket.Conn) error {
	hello := `{"type":"hello","num_connections":1,"debug_info":{"host":"fake-applink","approximate_connection_time":18060},"connection_info":{"app_id":"A1"}}`
	if err := conn.WriteMessage(websocket.TextMessage, []byte(hello)); err != nil {
		return err
	}
	return conn.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second))
}

func (s *socketSide) readAcks(conn *websocket.Conn) {
	defer func() { _ = conn.Close() }()
	for {
		_, raw, err := conn.ReadMessage()
		if err != nil {
			s.mu.Lock()
			for i, c := range s.conns {
				if c == conn {
					s.conns = append(s.conns[:i], s.conns[i+1:]...)
					break
				}
			}
			s.mu.Unlock()
			return
		}
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(raw, &ack) != nil {
			continue
		}
		s.mu.Lock()
		ch := s.acks[ack.EnvelopeID]
		delete(s.acks, ack.EnvelopeID)
		s.mu.Unlock()
		if ch != nil {
			ch <- ack.Payload
		}
	}
}

// SendInteractive sends an interactive envelope with the payload over the
// newest connection and waits up to within for its ack, returning the
// ack's payload.
func (f *Server) SendInteractive(envelopeID, payload string, within time.Duration) (json.RawMessage, error) {
	return f.SendEnvelope(envelopeID, "interactive", payload, true, within)
}

// SendEnvelope sends an envelope of type typ ("interactive",
// "slash_commands", …) with the payload, which must be JSON, over the
// newest connection and waits up to within for the ack carrying its
// envelope_id, returning the ack's payload. acceptsResponse is the
// envelope's accepts_response_payload.
func (f *Server) SendEnvelope(envelopeID, typ, payload string, acceptsResponse bool, within time.Duration) (json.RawMessage, error) {
	s := f.socketState()
	if s == nil {
		return nil, errors.New("socket mode is not enabled on the fake")
	}
	ch := make(chan json.RawMessage, 1)
	s.mu.Lock()
	if len(s.conns) == 0 {
		s.mu.Unlock()
		return nil, errors.New("no socket mode connection")
	}
	conn := s.conns[len(s.conns)-1]
	s.acks[envelopeID] = ch
	env := fmt.Sprintf(`{"envelope_id":%q,"type":%q,"payload":%s,"accepts_response_payload":%t,"retry_attempt":0,"retry_reason":""}`,
		envelopeID, typ, payload, acceptsResponse)
	err := conn.WriteMessage(websocket.TextMessage, []byte(env))
	s.mu.Unlock()
	if err != nil {
		s.forget(envelopeID)
		return nil, err
	}
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case p := <-ch:
		return p, nil
	case <-timer.C:
		s.forget(envelopeID)
		return nil, fmt.Errorf("no ack for envelope %s within %v", envelopeID, within)
	}
}

func (s *socketSide) forget(envelopeID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.acks, envelopeID)
}

// SocketConnected reports whether a client is connected.
func (f *Server) SocketConnected() bool {
	s := f.socketState()
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns) > 0
}

// WaitSocket waits up to within for a client to be connected (past its
// hello, and not one CloseAfterHello drops).
func (f *Server) WaitSocket(within time.Duration) error {
	s := f.socketState()
	if s == nil {
		return errors.New("socket mode is not enabled on the fake")
	}
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		s.mu.Lock()
		n, changed := len(s.conns), s.changed
		s.mu.Unlock()
		if n > 0 {
			return nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return fmt.Errorf("no socket mode connection within %v", within)
		}
	}
}
