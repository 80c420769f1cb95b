// A throwaway offline oracle: kro v0.9.3's own graph builder over an RGD, with schemas from CRD
// files and from a dump of a real kube-apiserver's /openapi/v3. Not part of the project.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/yaml"

	"github.com/kubernetes-sigs/kro/api/v1alpha1"
	"github.com/kubernetes-sigs/kro/pkg/features"
	"github.com/kubernetes-sigs/kro/pkg/graph"
	kroschema "github.com/kubernetes-sigs/kro/pkg/graph/schema"
)

type res struct {
	crds    map[schema.GroupVersionKind]*spec.Schema
	openapi map[string]map[string]*spec.Schema // gv path -> components
}

func (r *res) ResolveSchema(gvk schema.GroupVersionKind) (*spec.Schema, error) {
	if s, ok := r.crds[gvk]; ok {
		return s, nil
	}
	path := "api_" + gvk.Version
	if gvk.Group != "" {
		path = "apis_" + gvk.Group + "_" + gvk.Version
	}
	comps, ok := r.openapi[path]
	if !ok {
		return nil, fmt.Errorf("cannot resolve group version %q: %w", gvk.GroupVersion(), resolver.ErrSchemaNotFound)
	}
	for ref, s := range comps {
		var gvks []schema.GroupVersionKind
		_ = s.Extensions.GetObject("x-kubernetes-group-version-kind", &gvks)
		for _, g := range gvks {
			if g == gvk {
				return resolver.PopulateRefs(func(ref string) (*spec.Schema, bool) {
					s, ok := comps[strings.TrimPrefix(ref, "#/components/schemas/")]
					return s, ok
				}, "#/components/schemas/"+ref)
			}
		}
	}
	return nil, fmt.Errorf("cannot resolve group version kind %q: %w", gvk, resolver.ErrSchemaNotFound)
}

func main() {
	dataDir := os.Args[1] // /tmp/kapi
	crdPaths := os.Args[2]
	rgdFiles := os.Args[3:]
	r := &res{crds: map[schema.GroupVersionKind]*spec.Schema{}, openapi: map[string]map[string]*spec.Schema{}}
	mapper := meta.NewDefaultRESTMapper(nil)
	files, _ := filepath.Glob(filepath.Join(dataDir, "openapi", "*.json"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		var doc struct {
			Components struct {
				Schemas map[string]*spec.Schema `json:"schemas"`
			} `json:"components"`
		}
		if json.Unmarshal(b, &doc) == nil && doc.Components.Schemas != nil {
			r.openapi[strings.TrimSuffix(filepath.Base(f), ".json")] = doc.Components.Schemas
		}
	}
	var kinds [][]interface{}
	b, _ := os.ReadFile(filepath.Join(dataDir, "kinds.json"))
	_ = json.Unmarshal(b, &kinds)
	for _, k := range kinds {
		gv, _ := schema.ParseGroupVersion(k[0].(string))
		scope := meta.RESTScopeRoot
		if k[2].(bool) {
			scope = meta.RESTScopeNamespace
		}
		mapper.Add(gv.WithKind(k[1].(string)), scope)
	}
	if crdPaths != "-" {
		for _, dir := range strings.Split(crdPaths, ",") {
			matches, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
			for _, m := range matches {
				raw, _ := os.ReadFile(m)
				for _, doc := range strings.Split(string(raw), "\n---") {
					var crd extv1.CustomResourceDefinition
					if yaml.Unmarshal([]byte(doc), &crd) != nil || crd.Kind != "CustomResourceDefinition" {
						continue
					}
					for _, v := range crd.Spec.Versions {
						gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
						s, err := kroschema.ConvertJSONSchemaPropsToSpecSchema(v.Schema.OpenAPIV3Schema)
						if err != nil {
							panic(err)
						}
						if s.Properties == nil {
							s.Properties = map[string]spec.Schema{}
						}
						s.Properties["metadata"] = kroschema.ObjectMetaSchema
						s.Properties["apiVersion"] = spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"string"}}}
						s.Properties["kind"] = spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"string"}}}
						r.crds[gvk] = s
						scope := meta.RESTScopeRoot
						if crd.Spec.Scope == extv1.NamespaceScoped {
							scope = meta.RESTScopeNamespace
						}
						mapper.Add(gvk, scope)
					}
				}
			}
		}
	}
	if g := os.Getenv("KRO_FEATURE_GATES"); g != "" {
		if err := features.FeatureGate.Set(g); err != nil {
			panic(err)
		}
	}
	builder, err := graph.NewBuilder(nil, nil, graph.WithSchemaResolver(r), graph.WithRESTMapper(mapper))
	if err != nil {
		panic(err)
	}
	for _, f := range rgdFiles {
		raw, _ := os.ReadFile(f)
		for i, doc := range strings.Split(string(raw), "\n---") {
			var rgd v1alpha1.ResourceGraphDefinition
			if err := yaml.Unmarshal([]byte(doc), &rgd); err != nil {
				out, _ := json.Marshal(map[string]interface{}{"file": f, "doc": i, "decode": err.Error()})
				fmt.Println(string(out))
				continue
			}
			if rgd.Kind != "ResourceGraphDefinition" {
				continue
			}
			if rgd.Spec.Schema == nil {
				continue
			}
			if rgd.Spec.Schema.Group == "" {
				rgd.Spec.Schema.Group = "kro.run"
			}
			if rgd.Spec.Schema.Scope == "" {
				rgd.Spec.Schema.Scope = v1alpha1.ResourceScopeNamespaced
			}
			g, err := builder.NewResourceGraphDefinition(&rgd, graph.RGDConfig{MaxCollectionSize: 1000, MaxCollectionDimensionSize: 10})
			result := map[string]interface{}{"file": f, "doc": i, "name": rgd.Name}
			if err != nil {
				result["error"] = err.Error()
			} else {
				result["ok"] = true
				result["order"] = g.TopologicalOrder
				result["crd"] = g.CRD
			}
			out, _ := json.Marshal(result)
			fmt.Println(string(out))
		}
	}
}
