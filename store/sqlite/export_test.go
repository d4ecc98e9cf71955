package sqlite

// MessageRecentQuery lets the query-plan test explain the statement as the
// store runs it.
const MessageRecentQuery = messageRecentQuery
