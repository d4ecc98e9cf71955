package journey

import (
	"os"
	"path/filepath"
	"testing"
)

func TestExamples(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) < 4 {
		t.Fatalf("found %d example journeys, want 4", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(filepath.Base(f), src, Options{}); err != nil {
				t.Fatalf("Parse:\n%v", err)
			}
		})
	}
}
