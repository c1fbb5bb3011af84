package experiments

import (
	"os"
	"testing"
)

// The test binary doubles as the agent, as the tcplab binary does.
func TestMain(m *testing.M) {
	if IsAgent() {
		os.Exit(AgentMain())
	}
	os.Exit(m.Run())
}
