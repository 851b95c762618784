package dynamodb

// SetUpdateAttempts lets the external tests reach the conflict bound quickly.
func SetUpdateAttempts(s *Store, n int) { s.updateAttempts = n }
