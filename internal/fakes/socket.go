package fakes

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
	upgrader websocket.Upgrader
}

// EnableSocketMode makes the fake accept Socket Mode connections from a
// client holding appToken.
func (f *Slack) EnableSocketMode(appToken string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appToken = appToken
	f.socket = &socketSide{acks: map[string]chan json.RawMessage{}, upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}}
}

// SocketOpens counts apps.connections.open calls that were granted.
func (f *Slack) SocketOpens() int {
	f.mu.Lock()
	s := f.socket
	f.mu.Unlock()
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

// serveSocket handles apps.connections.open and the WebSocket; it reports
// whether the request was one of those.
func (f *Slack) serveSocket(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	s, token := f.socket, f.appToken
	f.mu.Unlock()
	if s == nil {
		return false
	}
	switch r.URL.Path {
	case "/apps.connections.open":
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+token {
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
		hello := `{"type":"hello","num_connections":1,"connection_info":{"app_id":"A1"}}`
		if conn.WriteMessage(websocket.TextMessage, []byte(hello)) != nil {
			conn.Close()
			return true
		}
		s.mu.Lock()
		s.conns = append(s.conns, conn)
		s.mu.Unlock()
		go s.readAcks(conn)
		return true
	}
	return false
}

func (s *socketSide) readAcks(conn *websocket.Conn) {
	defer conn.Close()
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
func (f *Slack) SendInteractive(envelopeID, payload string, within time.Duration) (json.RawMessage, error) {
	f.mu.Lock()
	s := f.socket
	f.mu.Unlock()
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
	env := fmt.Sprintf(`{"envelope_id":%q,"type":"interactive","payload":%s,"accepts_response_payload":true,"retry_attempt":0,"retry_reason":""}`, envelopeID, payload)
	err := conn.WriteMessage(websocket.TextMessage, []byte(env))
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case p := <-ch:
		return p, nil
	case <-time.After(within):
		return nil, fmt.Errorf("no ack for envelope %s within %v", envelopeID, within)
	}
}

// SocketConnected reports whether a client is connected.
func (f *Slack) SocketConnected() bool {
	f.mu.Lock()
	s := f.socket
	f.mu.Unlock()
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns) > 0
}
