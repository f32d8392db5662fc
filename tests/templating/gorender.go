// gorender renders template cases with Go's text/template and sprig, for the differential test.
// Input (stdin): JSON list of {"template": "...", "data": {...}}. Output: JSON list of {"out", "error"}.
package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
)

type testCase struct {
	Template string          `json:"template"`
	Data     json.RawMessage `json:"data"`
}

type result struct {
	Out   string `json:"out"`
	Error string `json:"error"`
}

// convert turns json.Number into int (integral literals) or float64, the way Python's json module does.
func convert(v interface{}) interface{} {
	switch x := v.(type) {
	case json.Number:
		if !strings.ContainsAny(string(x), ".eE") {
			if i, err := x.Int64(); err == nil {
				return int(i)
			}
		}
		f, _ := x.Float64()
		return f
	case map[string]interface{}:
		for k, e := range x {
			x[k] = convert(e)
		}
		return x
	case []interface{}:
		for i, e := range x {
			x[i] = convert(e)
		}
		return x
	}
	return v
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	// Only the sprig helpers the provider implements: sprig's own "slice" would shadow Go's built-in.
	all := sprig.TxtFuncMap()
	funcs := template.FuncMap{}
	for _, name := range []string{"default", "empty", "coalesce", "upper", "lower", "title", "trim", "replace",
		"contains", "hasPrefix", "hasSuffix", "join", "toJson", "trimPrefix", "trimSuffix", "quote"} {
		funcs[name] = all[name]
	}
	results := make([]result, len(cases))
	for i, c := range cases {
		var data interface{}
		dec := json.NewDecoder(bytes.NewReader(c.Data))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			panic(err)
		}
		data = convert(data)
		tmpl, err := template.New("t").Funcs(funcs).Parse(c.Template)
		if err != nil {
			results[i] = result{Error: err.Error()}
			continue
		}
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, data); err != nil {
			results[i] = result{Out: buf.String(), Error: err.Error()}
			continue
		}
		results[i] = result{Out: buf.String()}
	}
	out, _ := json.Marshal(results)
	os.Stdout.Write(out)
}
