// Throwaway oracle: evaluates CEL expressions (one JSON object per stdin line: {"expr": ..., "vars": {...}})
// in kro v0.9.3's default CEL environment and prints the result or the error.
package main

import (
	"bytes"
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/google/cel-go/cel"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"github.com/google/cel-go/common/types/ref"

	krocel "github.com/kubernetes-sigs/kro/pkg/cel"
	"github.com/kubernetes-sigs/kro/pkg/cel/library"
	"github.com/kubernetes-sigs/kro/pkg/features"
)

func main() {
	if g := os.Getenv("KRO_FEATURE_GATES"); g != "" {
		_ = features.FeatureGate.Set(g)
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var in struct {
			Expr string                 `json:"expr"`
			Vars map[string]interface{} `json:"vars"`
		}
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&in); err != nil {
			panic(err)
		}
		for k, v := range in.Vars {
			in.Vars[k] = numbers(v)
		}
		names := []string{}
		for k := range in.Vars {
			names = append(names, k)
		}
		out := map[string]interface{}{"expr": in.Expr}
		env, err := krocel.DefaultEnvironment(krocel.WithResourceIDs(names))
		if err != nil {
			panic(err)
		}
		ast, iss := env.Compile(in.Expr)
		if iss != nil && iss.Err() != nil {
			out["compile_error"] = iss.Err().Error()
		} else {
			prg, err := env.Program(ast)
			if err != nil {
				out["program_error"] = err.Error()
			} else {
				vars := map[string]interface{}{"runtime": library.RuntimeSingleton}
				for k, v := range in.Vars {
					vars[k] = v
				}
				v, _, err := prg.Eval(vars)
				if err != nil {
					out["error"] = err.Error()
				} else {
					out["type"] = v.Type().TypeName()
					if c, ok := v.(*library.Condition); ok {
						out["value"] = map[string]string{"type": c.ConditionType, "status": c.Status, "reason": c.Reason, "message": c.Message}
						b, _ := json.Marshal(out)
						fmt.Println(string(b))
						continue
					}
					native, err := v.ConvertToNative(jsonValueType)
					if err != nil {
						out["value_string"] = fmt.Sprintf("%v", v.Value())
					} else {
						b, _ := protojson.Marshal(native.(*structpb.Value))
						out["value"] = json.RawMessage(b)
					}
				}
			}
		}
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
	}
}

var _ ref.Val
var _ = cel.BoolType

var jsonValueType = reflectTypeOfStructpbValue()

func numbers(v interface{}) interface{} {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]interface{}:
		for k, e := range t {
			t[k] = numbers(e)
		}
		return t
	case []interface{}:
		for i, e := range t {
			t[i] = numbers(e)
		}
		return t
	}
	return v
}
