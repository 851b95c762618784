package teams

import (
	"time"

	"github.com/approvalbot/approvalbot/internal/pace"
)

// NewPacerForTest is Teams' Pacer that hands every 429 up at once.
func NewPacerForTest() *pace.Pacer { return NewPacer(pace.Config{MaxWait: 200 * time.Millisecond}) }
