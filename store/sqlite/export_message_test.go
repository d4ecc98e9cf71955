package sqlite

import "github.com/nudge/nudge"

// MessageListQuery lets the query-plan test explain the messages log's
// statements as the store builds them.
func MessageListQuery(p *nudge.MessageListParams, beforeAt int64) (string, []any) {
	return messageListQuery(p, beforeAt)
}
