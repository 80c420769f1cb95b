// Throwaway oracle: kro v0.9.3's SimpleSchema conversion for JSON lines {"obj":…, "types":…}.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/kubernetes-sigs/kro/pkg/simpleschema"
)

func main() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var in struct {
			Obj   map[string]interface{} `json:"obj"`
			Types map[string]interface{} `json:"types"`
		}
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&in); err != nil {
			panic(err)
		}
		fix(in.Obj)
		fix(in.Types)
		out := map[string]interface{}{}
		s, err := simpleschema.ToOpenAPISpec(in.Obj, in.Types)
		if err != nil {
			out["error"] = err.Error()
		} else {
			out["schema"] = s
		}
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
	}
}

func fix(m map[string]interface{}) {
	for k, v := range m {
		switch t := v.(type) {
		case json.Number:
			if i, err := t.Int64(); err == nil {
				m[k] = int(i)
			}
		case map[string]interface{}:
			fix(t)
		}
	}
}
