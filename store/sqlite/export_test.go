package sqlite

// MessageRecentQuery lets the query-plan test explain the statement as the
// store runs it.
const MessageRecentQuery = messageRecentQuery

// MessagesUpdateQuery lets the query-plan test explain MessageUpdate's
// multi-row UPDATE.
var MessagesUpdateQuery = messagesUpdateQuery
