package journey

import _ "embed"

//go:embed journey.schema.json
var schema []byte

// Schema returns the JSON Schema (draft 2020-12) of the journey format, for
// editors (yaml-language-server) and API clients. docs/journey.schema.json
// is the same file; a test keeps them equal.
func Schema() []byte { return schema }
