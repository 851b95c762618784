package server

import (
	"net/http"

	"github.com/approvalbot/approvalbot/approvals"
)

// getAttestation answers a decided task's in-toto attestation (a DSSE
// envelope): 404 for a task without an artifact (or without receipts), 409
// while it is pending; the error table gives both.
func (s *Server) getAttestation(w http.ResponseWriter, r *http.Request) {
	t, err := s.cfg.Tasks.Lookup(r.Context(), r.PathValue("id"))
	if err == nil && s.cfg.Attest == nil {
		err = approvals.ErrNoReceipt
	}
	if err == nil {
		err = approvals.AttestationReady(t)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	envelope, err := s.cfg.Attest(r.Context(), t)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(envelope, '\n'))
}
